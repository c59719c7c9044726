"""SLU model wiring: frozen VQ-BERT, AM-PT transfer by name, saved encoders / teachers / bundles load back to the
same outputs, the feature cache, and the fine-tuning loss and augmentations as the authors coded them."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechkd.config import load_config
from speechkd.models.roberta import RobertaConfig, RobertaModel, TextClassifier
from speechkd.stages import slu_finetune as finetune
from speechkd.slu.bundle import load_bundle, save_bundle
from speechkd.slu.corpus import SluSplit
from speechkd.slu.encoders import LoadedRoberta, RobertaRef, load_roberta, save_roberta
from speechkd.slu.feature_cache import cached_features, compute_features
from speechkd.slu.speech_model import AcousticModel, Ds2Config, SpeechIntentModel, load_am_into, save_am_package
from speechkd.slu.teacher import load_teacher, save_teacher
from speechkd.slu.text import WordTextEncoder, build_word_dictionary
from speechkd.slu.unit_source import SOURCE_FILE
from speechkd.data.manifests import SluExample
from speechkd.tokenizers.dictionary import Dictionary
from speechkd.fileio import write_json_atomic

TINY = RobertaConfig(layers=1, embed_dim=16, heads=2, ffn_dim=32, max_positions=64)
DS2 = Ds2Config(hidden_size=8, num_layers=2, conv_channels=2)


def unit_dictionary() -> Dictionary:
    d = Dictionary.build([" ".join(f"{i}-{j}" for i in range(4) for j in range(3))])
    d.add_symbol("<mask>")
    return d


def tiny_roberta(vocab: int, seed: int = 0) -> RobertaModel:
    torch.manual_seed(seed)
    return RobertaModel(TINY, vocab).eval()


def tokens(d: Dictionary, n: int, lengths=(9, 6, 12)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return [torch.cat([torch.tensor([0]), torch.randint(4, len(d) - 1, (L,), generator=g)]) for L in lengths]


def test_saved_roberta_loads_back_through_the_fairseq_loader(tmp_path):
    d = unit_dictionary()
    model = tiny_roberta(len(d))
    save_roberta(tmp_path, model, d)
    cfg = types.SimpleNamespace(runs_dir=str(tmp_path), profile="p", data_root="")
    loaded = load_roberta(cfg, RobertaRef(checkpoint=str(tmp_path / "encoder.pt")), "vq_bert")
    assert loaded.dictionary.symbols == d.symbols
    x = tokens(d, 1)[0][None]
    torch.testing.assert_close(loaded.model.extract_features(x), model.extract_features(x))
    assert loaded.model.cfg.heads == 2


def test_frozen_vq_bert_gets_no_gradient_and_can_stay_in_eval_mode():
    d = unit_dictionary()
    model = SpeechIntentModel(tiny_roberta(len(d)), DS2.build(16), 5, vq_bert_train_mode=False)
    model.train()
    assert not model.vq_bert.training and model.ds2.training
    x = torch.stack([t[:7] for t in tokens(d, 2)])
    model(torch.tensor([7, 6, 7]), x).sum().backward()
    assert all(p.grad is None for p in model.vq_bert.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    authors = SpeechIntentModel(tiny_roberta(len(d)), DS2.build(16), 5)  # as coded: model.train() reaches it
    assert authors.train().vq_bert.training


def test_am_pretraining_weights_go_into_the_slu_model_by_name(tmp_path):
    d = unit_dictionary()
    am = AcousticModel(tiny_roberta(len(d)), DS2.build(16))
    with torch.no_grad():
        for p in am.parameters():
            p.uniform_(-1, 1)
    save_am_package(tmp_path / "am.pt", am, DS2, {"epoch": 3})
    ds2 = DS2.build(16)
    assert load_am_into(ds2, tmp_path / "am.pt") == len(am.ds2.state_dict())
    for name, value in am.ds2.state_dict().items():
        torch.testing.assert_close(ds2.state_dict()[name], value)
    with pytest.raises(Exception, match="does not fit"):
        load_am_into(Ds2Config(hidden_size=12, num_layers=2, conv_channels=2).build(16), tmp_path / "am.pt")


def test_feature_cache_stores_once_and_returns_the_computed_features(tmp_path):
    d = unit_dictionary()
    model = tiny_roberta(len(d))
    seqs = tokens(d, 3)
    direct = compute_features(model, seqs, d.pad(), batch_size=2)
    first = cached_features(tmp_path, model, "digest", seqs, d.pad(), batch_size=2)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1
    with torch.no_grad():  # a second call reads the file: change the model, get the stored features back
        for p in model.parameters():
            p.add_(1.0)
    again = cached_features(tmp_path, model, "digest", seqs, d.pad(), batch_size=2)
    for a, b, c in zip(direct, first, again):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
    single = model.extract_features(seqs[1][None])[0]  # padding in a batch does not change a sequence's features
    assert cached_features(tmp_path, model, "other", seqs, d.pad())[1].shape == single.shape


def test_teacher_files_load_back_to_the_same_logits(tmp_path):
    words = build_word_dictionary(["turn on the lights", "turn off the music"])
    words.add_symbol("<mask>")
    (tmp_path / "src").mkdir()
    Dictionary.save(Dictionary.build(["turn on the lights", "turn off the music"]), tmp_path / "src" / "dict.txt")
    teacher = TextClassifier(tiny_roberta(len(words)), 3).eval()
    save_teacher(tmp_path, teacher, tmp_path / "src" / "dict.txt", "words", ("", ""), ["a b c", "d e f", "g h i"])
    loaded, encoder, intents = load_teacher(tmp_path)
    x = WordTextEncoder(words).encode("turn on the music")[None]
    assert encoder.encode("turn on the music").tolist() == x[0].tolist()
    torch.testing.assert_close(loaded(x)[0], teacher(x)[0])
    assert intents == ["a b c", "d e f", "g h i"]


def _task(tmp_path, da: dict, ft_kd: str = "l1") -> finetune.FinetuneTask:
    cfg = load_config(finetune.Config, overrides=[
        f"ft_kd={ft_kd}", "teacher_run=t", "batching.batch_size=3",
        *[f"da.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in da.items()]])
    d = unit_dictionary()
    seqs = tokens(d, 4, lengths=(30, 25, 40))
    ex = [SluExample(str(i), "", "", "a", "b", "c", "t") for i in range(3)]
    splits = {s: SluSplit(ex, ["" for _ in ex], [0, 1, 2]) for s in ("train", "valid", "test")}
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0], [0.0, 0.0, 3.0]])
    return finetune.FinetuneTask(cfg, splits, {s: seqs for s in splits}, {}, teacher, d.index("<mask>"), d.pad(), 16)


def test_augmentations_touch_training_batches_only(tmp_path):
    task = _task(tmp_path, {"token_masking": True, "emb_masking": True, "max_span": 5, "select_prob": 0.2})
    torch.manual_seed(0)
    batch = task.load_batch([0, 1, 2])
    mask = unit_dictionary().index("<mask>")
    assert (batch["tokens"] == mask).any() and not (batch["tokens"][:, 0] == mask).any()  # <s> never masked
    keep = batch["hidden_keep"]
    assert keep.shape == (3, 41, 16) and 0.2 < 1 - float(keep[0, :31].mean()) < 0.95
    assert ((keep == 0) | (keep == 1)).all()
    for b in task.eval["valid"]:
        assert "hidden_keep" not in b and not (b["tokens"] == mask).any()
    torch.manual_seed(0)
    assert torch.equal(task.load_batch([0, 1, 2])["tokens"], batch["tokens"])  # seeded -> reproducible


def test_finetuning_loss_is_ce_mean_plus_l1_sum_over_batch(tmp_path):
    task = _task(tmp_path, {})
    batch = task.load_batch([0, 1, 2])
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    model = lambda *args: logits  # noqa: E731
    loss, size, logs = task.loss(model, batch)
    ce = F.cross_entropy(logits, batch["labels"])
    l1 = (logits - batch["teacher"]).abs().sum() / 3
    assert size == 3
    torch.testing.assert_close(loss, (ce + l1) * 3)
    assert logs["accuracy"] == pytest.approx(200.0)  # rows 0 and 1 right: 2 x 100 (averaged over size later)


def test_bundle_round_trip_classifies_identically(tmp_path):
    d = unit_dictionary()
    model = SpeechIntentModel(tiny_roberta(len(d)), DS2.build(16), 4).eval()
    units_dir = tmp_path / "units"
    units_dir.mkdir()
    write_json_atomic(units_dir / SOURCE_FILE, {"tokenizer": "kmeans", "stack_frames": 2, "vq_wav2vec": ""})
    from speechkd.tokenizers.units import UnitTokenizer
    UnitTokenizer(torch.randn(2, 4, 80)).save(units_dir / "tokenizer.pt")
    vq = LoadedRoberta(model.vq_bert, d, tmp_path / "x.pt", tmp_path / "dict_src.txt", "")
    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / "dict_src.txt").write_text("".join(f"{s} 1\n" for s in d.symbols[4:-1]))
    save_bundle(out, model, DS2, units_dir, vq, ["change language none none", "b", "c", "d"])
    bundle = load_bundle(out)
    x = tokens(d, 5)[2][None]
    torch.testing.assert_close(bundle.model(torch.tensor([x.size(1)]), x), model(torch.tensor([x.size(1)]), x))
    assert bundle.intents[0] == "change language none none" and bundle.units.stack == 2
    wave = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    assert len(bundle.units.tokens(wave).split()) == 24  # 48 frames of 10 ms, stacked in pairs
