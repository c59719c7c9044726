"""The trainer in-process: schedules, accumulation, clipping, stopping, checkpoints, frozen/expert modules."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from speechkd.config import RunConfig, load_config, option
from speechkd.errors import InputError
from speechkd.runs import Run
from speechkd.train import distributed as dist
from speechkd.train.checkpoint import average_checkpoints, load_checkpoint, save_checkpoint
from speechkd.train.config import TrainConfig
from speechkd.train.optim import LRSchedule
from speechkd.train.reproducibility import seed_everything
from speechkd.train.trainer import Trainer

from support import train_toy  # noqa: E402


@dataclasses.dataclass
class StageConfig(RunConfig):
    train: TrainConfig = option(TrainConfig, "trainer")


def make_run(tmp_path: Path, train: TrainConfig, name: str = "r") -> Run:
    run = Run(StageConfig(name=name, profile="t", runs_dir=str(tmp_path), train=train), stage="test")
    return run.start()


def quiet(**kw) -> TrainConfig:
    base = dict(progress=False, tensorboard=False, device="cpu", amp="none", log_interval=1)
    return TrainConfig(**{**base, **kw})


class RegressionTask:
    """Linear regression on fixed batches; specs are lists of row indices; scripted validation values."""

    def __init__(self, batches: list[list[int]], valid: list[float] | None = None, n: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)
        self.batches, self.valid, self.calls = batches, valid, 0
        self.updates: list[int] = []

    def train_batches(self, epoch, rank, world_size):
        return [list(b) for b in self.batches]

    def load_batch(self, spec):
        return {"x": self.x[spec], "y": self.y[spec]}

    def loss(self, model, batch):
        return F.mse_loss(model(batch["x"]), batch["y"], reduction="sum"), len(batch["y"]), {}

    def validate(self, model):
        self.calls += 1
        if self.valid is None:
            return {"valid_loss": F.mse_loss(model(self.x), self.y).item()}
        return {"valid_loss": self.valid[self.calls - 1], "valid_acc": -self.valid[self.calls - 1]}

    def on_update(self, num_updates, model):
        self.updates.append(num_updates)


def linear(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 1)


# ------------------------------------------------------------------------------------------ schedules

def test_inverse_sqrt_matches_fairseq_hand_values():
    s = LRSchedule(quiet(scheduler="inverse_sqrt", lr=0.002, warmup_updates=10000))
    assert s.lr_at(0) == 0.0  # warmup_init_lr -1 -> 0 with warmup
    assert s.lr_at(2500) == pytest.approx(0.0005, rel=1e-12)
    assert s.lr_at(9999) == pytest.approx(0.002 * 9999 / 10000, rel=1e-12)
    assert s.lr_at(10000) == pytest.approx(0.002, rel=1e-12)
    assert s.lr_at(40000) == pytest.approx(0.001, rel=1e-12)  # 0.002 * sqrt(10000 / 40000)
    assert s.lr_at(90000) == pytest.approx(0.002 / 3, rel=1e-12)
    s = LRSchedule(quiet(scheduler="inverse_sqrt", lr=1e-3, warmup_updates=4, warmup_init_lr=1e-7))
    assert [s.lr_at(n) for n in range(4)] == pytest.approx([1e-7 + n * (1e-3 - 1e-7) / 4 for n in range(4)])
    assert s.lr_at(16) == pytest.approx(5e-4)


def test_exponential_decays_per_epoch_until_min_lr_and_fixed_is_constant():
    s = LRSchedule(quiet(scheduler="exponential", lr=1.0, lr_decay=0.5, min_lr=0.2))
    # decays while lr >= min_lr (the SLU code's "while lr >= 1e-8"): 1, .5, .25, .125, then stays
    assert [s.lr_at(100, e) for e in range(6)] == [1.0, 0.5, 0.25, 0.125, 0.125, 0.125]
    slu = LRSchedule(quiet(scheduler="exponential", lr=1e-5, lr_decay=1 / 1.1, min_lr=1e-8))
    assert slu.lr_at(0, 3) == pytest.approx(1e-5 / 1.1 ** 3, rel=1e-12)
    fixed = LRSchedule(quiet(scheduler="fixed", lr=0.1))
    assert {fixed.lr_at(n, e) for n in (0, 7, 10 ** 6) for e in (0, 5)} == {0.1}
    warm = LRSchedule(quiet(scheduler="fixed", lr=0.1, warmup_updates=4))  # fairseq fixed: lr*(n+1)/warmup
    assert [warm.lr_at(n) for n in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_trainer_applies_the_exponential_schedule_per_epoch(tmp_path):
    task = RegressionTask([[0, 1, 2, 3], [4, 5, 6, 7]])
    cfg = quiet(optimizer="sgd_nesterov", lr=0.01, scheduler="exponential", lr_decay=0.5, max_epochs=3)
    trainer = Trainer(cfg, make_run(tmp_path, cfg), linear(), task)
    seen = []
    original = task.loss
    task.loss = lambda m, b: (seen.append(trainer.optimizer.param_groups[0]["lr"]), original(m, b))[1]
    trainer.fit()
    assert seen == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    assert task.updates == [1, 2, 3, 4, 5, 6]


def test_config_section_validates_through_load_config(tmp_path):
    cfg = load_config(StageConfig, data={"train": {"optimizer": "adamw", "betas": [0.9, 0.98]}},
                      overrides=["train.lr=0.002"])
    assert cfg.train.optimizer == "adamw" and cfg.train.betas == [0.9, 0.98] and cfg.train.lr == 0.002
    with pytest.raises(InputError, match="warmup_updates"):
        load_config(StageConfig, data={"train": {"scheduler": "inverse_sqrt", "warmup_updates": 0}})
    with pytest.raises(InputError, match="train.optimizer"):
        load_config(StageConfig, data={"train": {"optimizer": "lamb"}})


# ------------------------------------------------------------------------------ update semantics

def _one_update(tmp_path, name, batches, update_freq, clip_norm=0.0):
    cfg = quiet(optimizer="sgd_nesterov", lr=0.1, momentum=0.9, max_epochs=1, update_freq=update_freq,
                clip_norm=clip_norm)
    model = linear()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(cfg, make_run(tmp_path, cfg, name), model, RegressionTask(batches)).fit()
    return before, model.state_dict()


def test_update_freq_two_equals_one_update_on_the_concatenated_batch(tmp_path):
    a, b = [0, 1, 2], [3, 4, 5, 6, 7]  # different sizes: the sum normalisation matters
    _, accumulated = _one_update(tmp_path, "acc", [a, b], update_freq=2)
    before, joint = _one_update(tmp_path, "joint", [a + b], update_freq=1)
    for k in joint:
        assert torch.allclose(accumulated[k], joint[k], atol=1e-7), k
    # and that update is lr * 1.9 * grad(sum loss / 8) (first Nesterov step: g + momentum * g)
    task, model = RegressionTask([a + b]), linear()
    loss, size, _ = task.loss(model, task.load_batch(a + b))
    (loss / size).backward()
    assert torch.allclose(joint["weight"], before["weight"] - 0.1 * 1.9 * model.weight.grad, atol=1e-7)


def test_last_incomplete_group_still_makes_an_update(tmp_path):
    task = RegressionTask([[0], [1], [2], [3], [4]])
    cfg = quiet(optimizer="adam", lr=0.01, max_epochs=1, update_freq=2)
    metrics = Trainer(cfg, make_run(tmp_path, cfg), linear(), task).fit()
    assert metrics["num_updates"] == 3 and task.updates == [1, 2, 3]


def test_clip_norm_bounds_the_update(tmp_path):
    before, after = _one_update(tmp_path, "clip", [[0, 1, 2, 3]], update_freq=1, clip_norm=0.01)
    delta = torch.cat([(after[k] - before[k]).flatten() for k in after])
    assert delta.norm().item() == pytest.approx(0.1 * 1.9 * 0.01, rel=1e-3)


# -------------------------------------------------------------------------------- early stopping

def test_early_stopping_after_patience_validations_and_best_epoch(tmp_path):
    task = RegressionTask([[0, 1]], valid=[1.0, 0.5, 0.6, 0.7, 0.4, 0.3])
    cfg = quiet(max_epochs=10, patience=2)
    run = make_run(tmp_path, cfg)
    metrics = Trainer(cfg, run, linear(), task).fit()
    assert task.calls == 4 and metrics["epochs"] == 4 and metrics["stopped_early"] is True
    assert metrics["best_epoch"] == 2 and metrics["best_valid_loss"] == 0.5 and metrics["best_valid_acc"] == -0.5
    assert metrics["valid_loss"] == 0.7
    assert load_checkpoint(run.checkpoint_dir / "checkpoint_best.pt")["train_state"]["best_epoch"] == 2


def test_ties_move_checkpoint_best_but_do_not_reset_patience_and_maximize(tmp_path):
    task = RegressionTask([[0, 1]], valid=[1.0, 0.5, 0.5, 0.5, 0.1])
    metrics = Trainer(quiet(max_epochs=10, patience=2), make_run(tmp_path, quiet()), linear(), task).fit()
    assert task.calls == 4 and metrics["best_epoch"] == 4 and metrics["stopped_early"]
    task = RegressionTask([[0, 1]], valid=[1.0, 0.5, 0.6, 0.7])  # valid_acc = -valid_loss: -1, -.5, -.6, -.7
    cfg = quiet(max_epochs=4, patience=0, best_metric="valid_acc", maximize=True)
    metrics = Trainer(cfg, make_run(tmp_path, cfg, "max"), linear(), task).fit()
    assert metrics["best_epoch"] == 2 and metrics["best_valid_acc"] == -0.5 and not metrics["stopped_early"]


def test_unknown_best_metric_is_an_input_error(tmp_path):
    cfg = quiet(max_epochs=1, best_metric="valid_bleu")
    with pytest.raises(InputError, match="valid_bleu.*valid_loss"):
        Trainer(cfg, make_run(tmp_path, cfg), linear(), RegressionTask([[0]])).fit()


# ----------------------------------------------------------------------------------- checkpoints

def test_checkpoint_files_appear_and_load_weights_only(tmp_path):
    cfg = quiet(max_epochs=4, keep_last_epochs=2, tensorboard=True)
    run = make_run(tmp_path, cfg)
    Trainer(cfg, run, linear(), RegressionTask([[0, 1, 2], [3, 4]])).fit()
    names = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert names == ["checkpoint3.pt", "checkpoint4.pt", "checkpoint_best.pt", "checkpoint_last.pt"]
    state = torch.load(run.checkpoint_dir / "checkpoint_last.pt", weights_only=True)
    assert state["train_state"]["num_updates"] == 8 and state["train_state"]["epoch"] == 5
    assert len(state["rng"]) == 1 and set(state["rng"][0]) >= {"python", "numpy", "torch"}
    records = [json.loads(line) for line in run.log_path.read_text().splitlines()]
    assert [r["update"] for r in records if "loss" in r] == list(range(1, 9))
    assert any(p.name.startswith("events.") for p in (run.dir / "tensorboard").iterdir())


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    cfg = quiet(max_epochs=1)
    run = make_run(tmp_path, cfg)
    Trainer(cfg, run, linear(), RegressionTask([[0, 1]])).fit()
    last = run.checkpoint_dir / "checkpoint_last.pt"
    good = last.read_bytes()

    def crash(obj, f, *args, **kwargs):  # dies half way through writing
        Path(f).write_bytes(good[: len(good) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        Trainer(quiet(max_epochs=2), run, linear(), RegressionTask([[0, 1]])).fit()
    assert last.read_bytes() == good
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["checkpoint_best.pt", "checkpoint_last.pt"]
    monkeypatch.undo()
    assert load_checkpoint(last)["train_state"]["epochs_completed"] == 1


class Opaque:
    pass


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(InputError, match="junk.pt"):
        load_checkpoint(junk)
    save_checkpoint(tmp_path / "ok.pt", {"model": {"w": torch.ones(1000)}})
    cut = tmp_path / "cut.pt"
    cut.write_bytes((tmp_path / "ok.pt").read_bytes()[:300])
    with pytest.raises(InputError, match="cut.pt"):
        load_checkpoint(cut)
    torch.save({"model": {}, "extra": Opaque()}, tmp_path / "pickled.pt")
    with pytest.raises(InputError, match="pickled.pt.*weights_only"):
        load_checkpoint(tmp_path / "pickled.pt")
    save_checkpoint(tmp_path / "tensor.pt", torch.zeros(2))
    with pytest.raises(InputError, match="tensor.pt: not a checkpoint"):
        load_checkpoint(tmp_path / "tensor.pt")


def test_average_checkpoints_is_the_mean_of_model_parameters(tmp_path):
    for i, (w, steps) in enumerate([(1.0, 3), (2.0, 4), (6.0, 8)]):
        save_checkpoint(tmp_path / f"c{i}.pt", {"model": {"w": torch.full((2,), w), "n": torch.tensor(steps),
                                                          "h": torch.full((1,), w, dtype=torch.half)}})
    avg = average_checkpoints([tmp_path / f"c{i}.pt" for i in range(3)])
    assert torch.equal(avg["w"], torch.full((2,), 3.0))
    assert avg["n"].item() == 5  # integer tensors: floor division, as fairseq
    assert avg["h"].dtype == torch.float32 and avg["h"].item() == 3.0
    save_checkpoint(tmp_path / "other.pt", {"model": {"v": torch.zeros(2)}})
    with pytest.raises(InputError, match="other.pt"):
        average_checkpoints([tmp_path / "c0.pt", tmp_path / "other.pt"])


# --------------------------------------------------------------------- what is trained and saved

class Student(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.frozen = torch.nn.Linear(3, 4)
        self.frozen.requires_grad_(False)
        self.head = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.head(torch.relu(self.frozen(x)))


class DistillTask(RegressionTask):
    """Regresses onto an expert's outputs; the expert belongs to the task, not to the model."""

    def __init__(self):
        super().__init__([[0, 1, 2, 3], [4, 5, 6, 7]])
        self.expert = torch.nn.Linear(3, 1).requires_grad_(False)

    def loss(self, model, batch):
        with torch.no_grad():
            target = self.expert(batch["x"])
        return F.mse_loss(model(batch["x"]), target, reduction="sum"), len(target), {}


def test_frozen_submodule_and_external_expert_are_not_trained_and_expert_not_saved(tmp_path):
    torch.manual_seed(0)
    model, task = Student(), DistillTask()
    frozen0, head0 = model.frozen.weight.clone(), model.head.weight.clone()
    expert0 = task.expert.weight.clone()
    cfg = quiet(optimizer="adamw", lr=0.01, weight_decay=0.1, max_epochs=2)
    trainer = Trainer(cfg, make_run(tmp_path, cfg), model, task)
    trainer.fit()
    assert torch.equal(model.frozen.weight, frozen0) and torch.equal(task.expert.weight, expert0)
    assert not torch.equal(model.head.weight, head0)
    state = load_checkpoint(trainer.run.checkpoint_dir / "checkpoint_last.pt")
    assert sorted(state["model"]) == ["frozen.bias", "frozen.weight", "head.bias", "head.weight"]
    assert torch.equal(state["model"]["frozen.weight"], frozen0)
    assert len(state["optimizer"]["param_groups"][0]["params"]) == 2  # head only


# ----------------------------------------------------------------- learning, determinism, resume

def toy(tmp_path, name, max_epochs=2, num_workers=0, amp="none", n_train=600, stop_after=0):
    train = quiet(optimizer="adam", lr=3e-3, max_epochs=max_epochs, num_workers=num_workers, amp=amp,
                  save_interval_updates=7, log_interval=5, find_unused_parameters=False)
    cfg = train_toy.ToyConfig(name=name, profile="t", runs_dir=str(tmp_path), n_train=n_train, hidden=64,
                              train=train)
    seed_everything(cfg.seed)
    run = Run(cfg, stage="toy").start()
    model = train_toy.build_model(cfg)
    if stop_after:  # same run (same config hash), but this process stops early, as if interrupted
        train = dataclasses.replace(train, max_epochs=stop_after)
    metrics = Trainer(train, run, model, train_toy.ToyTask(cfg)).fit()
    return metrics, model, run


def test_learning_happens_on_the_toy_task(tmp_path):
    metrics, _, run = toy(tmp_path, "learn", max_epochs=3)
    first = json.loads(run.log_path.read_text().splitlines()[0])
    assert first["update"] == 5 and first["loss"] > 1.2  # about log(4) at the start
    assert metrics["train_loss"] < 0.75 * first["loss"] and metrics["valid_loss"] < 0.8
    _, valid_y = train_toy.make_data(500, seed=2)
    majority = torch.bincount(valid_y).max().item() / len(valid_y)
    assert metrics["valid_acc"] > majority + 0.1 and metrics["num_updates"] == 3 * 19


def test_dataloader_workers_and_in_process_resume_do_not_change_results(tmp_path):
    ref_metrics, ref_model, _ = toy(tmp_path, "ref", max_epochs=2)
    workers_metrics, workers_model, _ = toy(tmp_path, "workers", max_epochs=2, num_workers=2)
    assert workers_metrics == ref_metrics
    for a, b in zip(ref_model.state_dict().values(), workers_model.state_dict().values()):
        assert torch.equal(a, b)
    toy(tmp_path, "resumed", max_epochs=2, stop_after=1)         # stop after epoch 1 ...
    resumed_metrics, resumed_model, run = toy(tmp_path, "resumed", max_epochs=2)  # ... continue from it
    assert resumed_metrics == ref_metrics
    for a, b in zip(ref_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert any(json.loads(line).get("event") == "resume" for line in run.log_path.read_text().splitlines())


def test_amp_auto_is_off_on_cpu_and_bf16_trains(tmp_path):
    cfg = quiet(amp="auto")
    assert Trainer(cfg, make_run(tmp_path, cfg), linear(), RegressionTask([[0]])).amp is False
    metrics, _, _ = toy(tmp_path, "bf16", max_epochs=1, amp="bf16")
    assert math.isfinite(metrics["train_loss"]) and metrics["valid_loss"] < 1.3


def test_single_process_distributed_helpers_are_identities():
    assert (dist.world_size(), dist.rank(), dist.is_main()) == (1, 0, True)
    assert dist.all_reduce_floats([1.5, 2.0]) == [1.5, 2.0]
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    assert dist.all_gather_object(3) == [3]
    assert dist.device("cpu").type == "cpu"


def test_a_task_that_is_a_module_is_refused(tmp_path):
    class ModuleTask(torch.nn.Module, RegressionTask):
        def __init__(self):
            torch.nn.Module.__init__(self)
            RegressionTask.__init__(self, [[0]])
            self.expert = torch.nn.Linear(3, 1)

    with pytest.raises(TypeError, match="nn.Module"):
        Trainer(quiet(), make_run(tmp_path, quiet()), linear(), ModuleTask())


class CountingTask(RegressionTask):
    """Task state that must survive a resume (like a beta schedule or a curriculum position)."""

    def __init__(self):
        super().__init__([[0, 1], [2, 3]])
        self.seen = 0

    def loss(self, model, batch):
        self.seen += len(batch["y"])
        return super().loss(model, batch)

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_task_state_and_update_counter_survive_a_resume(tmp_path):
    cfg = quiet(max_epochs=2)
    run = make_run(tmp_path, cfg)
    first = CountingTask()
    Trainer(dataclasses.replace(cfg, max_epochs=1), run, linear(), first).fit()
    second = CountingTask()
    metrics = Trainer(cfg, run, linear(), second).fit()
    assert (first.seen, second.seen) == (4, 8) and second.updates == [3, 4] and metrics["num_updates"] == 4


def test_seed_everything_switches_on_deterministic_algorithms_in_warn_only_mode():
    code = ("import sys, torch\n"
            "from speechkd.train.reproducibility import seed_everything\n"
            "seed_everything(1)\n"
            "assert torch.are_deterministic_algorithms_enabled()\n"
            "assert torch.is_deterministic_algorithms_warn_only_enabled()\n"
            # the inductor flag is set only when inductor is in use; importing it costs seconds per process
            "assert 'torch._inductor.config' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
