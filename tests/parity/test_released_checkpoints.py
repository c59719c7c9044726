"""load_released_checkpoint: the released fairseq 0.6-0.10 files (numpy 1.x bookkeeping, classes we do not have)
load with their weights intact; pickled code is refused and never runs."""
from __future__ import annotations

import argparse
import builtins
import functools
import operator
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from support.released_checkpoints import write_released_checkpoint
from speechkd.errors import InputError
from speechkd.interop.fairseq_checkpoint import read_fairseq_checkpoint
from speechkd.train import safe_unpickle
from speechkd.train.checkpoint import load_checkpoint, load_released_checkpoint
from support.paths import FAIRSEQ_FIXTURES

FIXTURES = FAIRSEQ_FIXTURES


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"encoder.embed_tokens.weight": torch.randn(7, 4, generator=g),
            "encoder.layers.0.fc1.weight": torch.randn(8, 4, generator=g).half(),
            "encoder.layers.0.fc1.bias": torch.randn(8, generator=g),
            "encoder.version": torch.tensor([2.0]),
            "decoder.counter": torch.arange(5)}


def _args() -> argparse.Namespace:
    return argparse.Namespace(arch="transformer_wmt_en_de_big", encoder_embed_dim=4, lr=[0.0005], seed=1)


def _pickle_bytes(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def _no_fallback(monkeypatch):
    class Refuse(safe_unpickle.Unpickler):
        def __init__(self, *a, **k):
            raise AssertionError("the restricted pickle module was used")
    monkeypatch.setattr(safe_unpickle, "Unpickler", Refuse)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_numpy_bookkeeping_loads_with_identical_weights(tmp_path, monkeypatch, zip_format):
    state = _state()
    path = write_released_checkpoint(tmp_path / "model1.pt", state, _args(), zipfile=zip_format,
                                     fairseq_meters=False)
    raw = _pickle_bytes(path) if zip_format else path.read_bytes()
    assert b"cnumpy.core.multiarray\nscalar\n" in raw and b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    assert b"numpy._core" not in raw  # numpy 1.x names although numpy 2 is installed
    with pytest.raises(InputError, match="weights_only"):  # our strict loader refuses it
        load_checkpoint(path)
    _no_fallback(monkeypatch)  # numpy globals are taken by torch's own weights_only unpickler
    ckpt = load_released_checkpoint(path)
    assert "cfg" not in ckpt and isinstance(ckpt["args"], argparse.Namespace) and ckpt["args"].lr == [0.0005]
    assert list(ckpt["model"]) == list(state)
    for name, value in state.items():
        assert ckpt["model"][name].dtype == value.dtype and torch.equal(ckpt["model"][name], value)
    extra = ckpt["extra_state"]
    assert type(extra["val_loss"]) is np.float64 and extra["val_loss"] == 4.25
    np.testing.assert_array_equal(extra["val_loss_history"], [5.25, 4.75, 4.25])
    assert type(ckpt["optimizer_history"][-1]["lr_scheduler_state"]["best"]) is np.float64
    adam = ckpt["last_optimizer_state"]
    assert adam["state"][0]["step"] == 1000 and torch.equal(adam["state"][0]["exp_avg"],
                                                            torch.zeros_like(state["encoder.embed_tokens.weight"]))
    params, args = read_fairseq_checkpoint(path)
    assert args["arch"] == "transformer_wmt_en_de_big" and torch.equal(params["decoder.counter"], torch.arange(5))


def test_unknown_class_in_bookkeeping_is_an_inert_stand_in(tmp_path):
    path = write_released_checkpoint(tmp_path / "checkpoint_best.pt", _state(), _args())  # fairseq.meters objects
    assert b"cfairseq.meters\nAverageMeter\n" in _pickle_bytes(path)
    ckpt = load_released_checkpoint(path)
    meter = ckpt["extra_state"]["train_meters"]["train_loss"]
    assert isinstance(meter, safe_unpickle.PickledObject)
    assert meter.stand_in_for() == "fairseq.meters.AverageMeter"
    assert meter.state == {"val": 4.25, "avg": 4.25, "sum": 42.5, "count": 10}
    assert "fairseq" not in sys.modules  # nothing was imported
    assert type(ckpt["extra_state"]["val_loss"]) is np.float64  # numpy through the restricted module too
    np.testing.assert_array_equal(ckpt["extra_state"]["val_loss_history"], [5.25, 4.75, 4.25])
    params, args = read_fairseq_checkpoint(path)
    assert args["encoder_embed_dim"] == 4 and torch.equal(params["encoder.version"], torch.tensor([2.0]))
    assert all(torch.equal(ckpt["model"][k], v) for k, v in _state().items())


CALLS: list = []


def _bookkeeping_factory(*args):
    """A function of a module the loader does not know: pickled by name, must be recorded, never called."""
    CALLS.append(args)
    return args


def test_unknown_callable_is_recorded_not_called(tmp_path):
    path = write_released_checkpoint(tmp_path / "x.pt", _state(), _args(), fairseq_meters=False,
                                     extra={"extra_state": {"thing": _Reduce(_bookkeeping_factory, 1, "two")}})
    ckpt = load_released_checkpoint(path)
    thing = ckpt["extra_state"]["thing"]
    assert isinstance(thing, safe_unpickle.PickledObject) and thing.args == (1, "two")
    assert thing.stand_in_for().endswith("._bookkeeping_factory") and CALLS == []


class _Reduce:
    """Pickles as a call of `func(*args)`, which a plain pickle.load would run."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("func, global_name", [
    (os.system, "system"),
    (builtins.eval, "builtins.eval"),
    (builtins.exec, "builtins.exec"),
    (subprocess.call, "subprocess.call"),
    (functools.partial, "functools.partial"),
    (operator.attrgetter, "operator.attrgetter"),
    (builtins.getattr, "builtins.getattr"),
], ids=["os.system", "eval", "exec", "subprocess.call", "functools.partial", "attrgetter", "getattr"])
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pickled_code_is_refused_and_never_runs(tmp_path, func, global_name, zip_format):
    marker = tmp_path / "pwned"
    if func is os.system:
        payload = _Reduce(os.system, f"touch {marker}")
    elif func is subprocess.call:
        payload = _Reduce(subprocess.call, ["touch", str(marker)])
    elif func in (builtins.eval, builtins.exec):
        payload = _Reduce(func, f"open({str(marker)!r}, 'w').close()")
    else:
        payload = _Reduce(func, "x")
    path = write_released_checkpoint(tmp_path / "model.pt", _state(), _args(), zipfile=zip_format,
                                     extra={"extra_state": {"epoch": 1, "hook": payload}})
    with pytest.raises(InputError) as info:
        load_released_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and global_name in message and "refused" in message
    assert not marker.exists()
    with pytest.raises(InputError, match=global_name.replace(".", r"\.")):  # the fairseq readers refuse it too
        read_fairseq_checkpoint(path)
    assert not marker.exists()


def test_refused_global_exits_2_without_traceback(tmp_path):
    marker = tmp_path / "pwned"
    path = write_released_checkpoint(tmp_path / "model.pt", _state(), _args(),
                                     extra={"extra_state": {"x": _Reduce(os.system, f"touch {marker}")}})
    code = ("import sys\nfrom speechkd.errors import InputError\n"
            "from speechkd.train.checkpoint import load_released_checkpoint\n"
            "try:\n    load_released_checkpoint(sys.argv[1])\n"
            "except InputError as e:\n    print(e, file=sys.stderr); sys.exit(2)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr and "system" in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("name", ["roberta_v09.pt", "transformer_nmt_oldformat.pt", "roberta.pt",
                                  "transformer_nmt.pt", "vq_wav2vec_kmeans.pt"])
def test_real_fairseq_fixture_loads_with_the_same_weights(name, monkeypatch):
    path = FIXTURES / name
    strict = load_checkpoint(path)
    _no_fallback(monkeypatch)
    released = load_released_checkpoint(path)
    assert sorted(released) == sorted(strict)
    assert list(released["model"]) == list(strict["model"])
    for key, value in strict["model"].items():
        assert torch.equal(released["model"][key], value)


def test_missing_and_corrupt_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_released_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        load_released_checkpoint(bad)


@pytest.mark.parametrize("module, name", [("posix", "system"), ("nt", "system"), ("os", "popen"),
                                          ("__builtin__", "eval"),
                                          ("builtins", "__import__"), ("importlib", "import_module"),
                                          ("sys", "modules"), ("pickle", "loads"), ("marshal", "loads"),
                                          ("types", "FunctionType"), ("codecs", "open"), ("_codecs", "decode"),
                                          ("operator", "methodcaller"), ("torch", "load"), ("numpy", "load"),
                                          ("runpy", "run_path"), ("subprocess", "Popen")])
def test_code_running_globals_are_refused_by_name(module, name):
    data = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\nX\x02\x00\x00\x00idq\x00\x85R."
    with pytest.raises(safe_unpickle.RefusedGlobal) as info:
        safe_unpickle.loads(data)
    assert info.value.name.endswith(name)


def test_state_of_an_allowed_class_cannot_be_patched():
    # BUILD with slot state on the argparse.Namespace class itself would setattr on the class
    data = b"\x80\x02cargparse\nNamespace\nN}X\x03\x00\x00\x00fooK\x01s\x86b."
    with pytest.raises(pickle.UnpicklingError, match="refusing to set the state"):
        safe_unpickle.loads(data)
    assert not hasattr(argparse.Namespace, "foo")


def test_only_allowed_globals_and_stand_ins_are_called():
    # NEWOBJ makes a stand-in instance; REDUCE on that instance (not a global) is refused
    data = b"\x80\x02csomelib\nThing\n)\x81)R."
    with pytest.raises(pickle.UnpicklingError, match="refusing to call"):
        safe_unpickle.loads(data)
    thing = safe_unpickle.loads(b"\x80\x02csomelib\nThing\nK\x01\x85R.")
    assert thing.args == (1,) and thing.stand_in_for() == "somelib.Thing" and "somelib" not in sys.modules


def _rewritten(tmp_path: Path, name: str, **kw) -> tuple[Path, dict]:
    """A fixture's weights and arguments rewritten as a released 2019-2020 file (legacy format, numpy, meters)."""
    ckpt = load_checkpoint(FIXTURES / name)
    args = ckpt["args"]
    if not isinstance(args, argparse.Namespace):  # a 0.12 fixture: its cfg.model as the old args Namespace
        args = argparse.Namespace(**ckpt["cfg"]["model"])
    return write_released_checkpoint(tmp_path / name, ckpt["model"], args, zipfile=False, **kw), ckpt


@pytest.mark.parametrize("name", ["roberta_v09.pt", "transformer_nmt_oldformat.pt", "vq_wav2vec_kmeans.pt"])
def test_models_from_released_layout_files_match_the_fixtures(tmp_path, name):
    from speechkd.interop.fairseq_models import load_fairseq_model
    from speechkd.interop.fairseq_roberta import load_fairseq_roberta
    from speechkd.models.vq_wav2vec import load_fairseq_vq_wav2vec

    path, _ = _rewritten(tmp_path, name)
    loader = {"roberta_v09.pt": lambda p: load_fairseq_roberta(p)[0],
              "transformer_nmt_oldformat.pt": lambda p: load_fairseq_model(p)[0],
              "vq_wav2vec_kmeans.pt": load_fairseq_vq_wav2vec}[name]
    ours, theirs = loader(path).state_dict(), loader(FIXTURES / name).state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
