"""ST data: fairseq's S2T collater (length order, EOS-first prev_output_tokens, ntokens), the expert's source in its
own vocabulary (fastBPE restricted to the dict, the fork's transform_source_tokens_into_expert_voc), text
batches, and the task's batching / filtering / validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechkd.data.manifests import write_tsv
from speechkd.errors import InputError
from speechkd.features.cmvn import utterance_cmvn
from speechkd.features.store import write_feature_zip
from speechkd.st.criteria import CRITERIA, CriterionConfig, CriterionContext
from speechkd.st.data import SpeechDataset, TextDataset, collate_targets
from speechkd.st.task import StTask
from speechkd.st.vocab import TextEncoder
from speechkd.tokenizers.bpe import BPE
from speechkd.tokenizers.dictionary import Dictionary

COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker", "src_text")


def make_vocab(tmp: Path) -> tuple[Path, Path]:
    """Codes that merge "h e" -> "he", "he l" -> "hel", "l o</w>" ; a dict without "hel" (so the restricted BPE
    splits it back) but with everything else."""
    (tmp / "bpecodes").write_text("h e 10\nhe l 5\nl o</w> 4\n")
    d = Dictionary()
    for sym in ("he@@", "l@@", "lo", "h@@", "e@@", "w@@", "o", "r@@", "d", "l", "hal@@", "a@@", "hel@@", "welt"):
        d.add_symbol(sym)
    d.save(tmp / "dict.txt")
    d2 = Dictionary()
    for sym in ("he@@", "l@@", "lo", "h@@", "e@@", "w@@", "o", "r@@", "d", "l", "welt"):
        d2.add_symbol(sym)
    d2.save(tmp / "dict_small.txt")
    return tmp / "bpecodes", tmp / "dict.txt"


@pytest.fixture()
def speech(tmp_path):
    codes, dict_path = make_vocab(tmp_path)
    rng = np.random.default_rng(0)
    feats = {"a": rng.standard_normal((7, 4)).astype(np.float32), "b": rng.standard_normal((12, 4)).astype(np.float32),
             "c": rng.standard_normal((9, 4)).astype(np.float32)}
    fields = write_feature_zip(tmp_path / "fbank80.zip", feats.items(), field_path="fbank80.zip")
    texts = {"a": ("hello", "hello world"), "b": ("lo", "hello"), "c": ("hello lo", "hell")}
    write_tsv(tmp_path / "train.tsv", [{"id": k, "audio": fields[k], "n_frames": len(feats[k]), "tgt_text": texts[k][0],
                                        "speaker": "s", "src_text": texts[k][1]} for k in feats], COLUMNS)
    target = TextEncoder.load(codes, dict_path)
    expert_src = TextEncoder(BPE.from_codes(codes, tmp_path / "dict_small.txt"), Dictionary.load(dict_path))
    return tmp_path, feats, SpeechDataset(tmp_path / "train.tsv", tmp_path, target, expert_source=expert_src)


def test_speech_collate_is_fairseqs(speech):
    tmp, feats, ds = speech
    d = ds.target.dictionary
    batch = ds.collate([0, 1, 2])
    assert batch["id"] == ["b", "c", "a"]  # longest first
    assert batch["source_lengths"].tolist() == [12, 9, 7]
    np.testing.assert_allclose(batch["source"][2, :7].numpy(), utterance_cmvn(feats["a"]), atol=1e-6)
    assert batch["source"][2, 7:].abs().sum() == 0
    # "hello" -> "hel@@ lo" (unrestricted target BPE)
    hello = [d.index("hel@@"), d.index("lo"), d.eos()]
    assert batch["target"][2].tolist() == hello + [d.pad()]
    assert batch["prev_output_tokens"][2].tolist() == [d.eos(), *hello[:-1], d.pad()]
    assert batch["ntokens"] == 2 + 3 + 4 and batch["target_lengths"].tolist() == [2, 4, 3]
    # the expert's source: "hel" is not in the (small) vocabulary: fastBPE splits it back to "he@@ l@@"; the
    # unknown "o@@" becomes <unk> (encode_line with add_if_not_exist=False)
    assert [d[i] for i in batch["expert_source"][2].tolist()] == ["he@@", "l@@", "lo", "w@@", "<unk>", "r@@", "l@@",
                                                                   "d", "</s>"]
    assert [d[i] for i in batch["expert_source"][1].tolist()[:4]] == ["he@@", "l@@", "l", "</s>"]
    assert batch["expert_source_lengths"].tolist() == [4, 4, 9]
    assert batch["src_text"] == ["hello", "hell", "hello world"]


def test_collate_targets_and_text_batches(tmp_path):
    d = Dictionary()
    for s in "abcd":
        d.add_symbol(s)
    ds = TextDataset(["a b", "c", "a b c d"], ["d", "a b c", "b"], d)
    assert ds.lengths.tolist() == [3, 4, 5]  # max(source, target) incl. EOS: what max_tokens packs by
    batch = ds.collate([0, 1, 2])
    assert batch["id"] == ["2", "0", "1"]
    assert batch["source"][2].tolist() == [d.index("c"), d.eos(), 1, 1, 1]
    assert batch["prev_output_tokens"][2].tolist() == [d.eos(), d.index("a"), d.index("b"), d.index("c")]
    out = collate_targets([torch.tensor([5, 6, 2]), torch.tensor([7, 2])], d)
    assert out["prev_output_tokens"].tolist() == [[2, 5, 6], [2, 7, 1]] and out["ntokens"] == 5
    with pytest.raises(InputError, match="2 source lines but 1 target"):
        TextDataset(["a", "b"], ["c"], d)


def test_task_filters_batches_and_validates(speech):
    tmp, _, ds = speech
    crit = CRITERIA["label_smoothed_nll"](CriterionConfig(), CriterionContext(ds.target.dictionary))
    task = StTask(ds, ds, crit, max_tokens=24, seed=3, specaugment="none", max_source_positions=10,
                  required_batch_size_multiple=1)
    assert task.skipped == 1  # "b" has 12 frames > max_source_positions
    batches = task.train_batches(1, 0, 1)
    assert sorted(i for b in batches for i in b) == [0, 2]
    assert task.train_batches(1, 0, 1) == batches  # deterministic per epoch

    class Uniform(torch.nn.Module):
        """log p = -log V everywhere: the validation loss must be exactly log V."""
        def forward(self, src, src_lengths, prev):
            return torch.zeros(*prev.shape, len(ds.target.dictionary))

        def set_num_updates(self, n):
            self.n = n

    metrics = task.validate(Uniform())
    assert metrics["valid_loss"] == pytest.approx(np.log(len(ds.target.dictionary)), rel=1e-6)
    model = Uniform()
    task.on_update(7, model)
    assert model.n == 7 and task.state_dict()["num_updates"] == 7
