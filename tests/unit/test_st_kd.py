"""The ST pipeline's KD criteria (st/criteria/kd.py) and the frozen expert (st/expert.py) on tiny models.

References are computed independently here: the student's greedy hypotheses with decode/search.greedy, the mixed
prefixes with kd/rollin.apply_rollin, the losses with kd/sequence_losses (hand-checked in test_kd_losses.py).
Dropout is 0 so that the student's train-mode forward equals its eval-mode forward.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from speechkd.config import RunConfig
from speechkd.data.batching import collate_features, pad_sequences
from speechkd.decode.search import greedy
from speechkd.errors import InputError
from speechkd.kd import sequence_losses as losses
from speechkd.kd.rollin import apply_rollin, draw_replaced_rows, rollin_max_len
from speechkd.models.s2t_transformer import S2TTransformerModel
from speechkd.models.seq2seq import log_softmax_fp32
from speechkd.models.transformer_nmt import TransformerNMTModel
from speechkd.runs import Run
from speechkd.st.criteria import CRITERIA, CriterionConfig, CriterionContext, KDConfig
from speechkd.st.data import collate_targets
from speechkd.st.expert import Expert, ExpertConfig, load_expert, transform_source_tokens_into_expert_voc
from speechkd.st.task import StTask
from speechkd.st.vocab import TextEncoder
from speechkd.tokenizers.bpe import BPE
from speechkd.tokenizers.dictionary import Dictionary
from speechkd.train.checkpoint import load_checkpoint
from speechkd.train.config import TrainConfig
from speechkd.train.trainer import Trainer
from support.paths import FAIRSEQ_FIXTURES

FEATS = 8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: thread hand-offs would cost more than the work (and the test machines are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

WORDS = ["das", "haus", "ist", "klein", "der", "mann", "sieht", "den", "hund", "gross", "a", "b@@", "c"]


def dictionary() -> Dictionary:
    d = Dictionary()
    for w in WORDS:
        d.add_symbol(w)
    d.pad_to_multiple(8)
    return d


def tiny_s2t(vocab: int, seed: int) -> S2TTransformerModel:
    torch.manual_seed(seed)
    return S2TTransformerModel.build(
        "s2t_transformer_s", vocab, encoder_layers=1, decoder_layers=1, encoder_embed_dim=16,
        encoder_ffn_embed_dim=32, encoder_attention_heads=2, decoder_attention_heads=2, conv_channels=16,
        input_feat_per_channel=FEATS, dropout=0.0)


def tiny_nmt(vocab: int, seed: int) -> TransformerNMTModel:
    torch.manual_seed(seed)
    return TransformerNMTModel.build(
        "transformer", vocab, vocab, encoder_layers=1, decoder_layers=1, encoder_embed_dim=16, decoder_embed_dim=16,
        encoder_ffn_embed_dim=32, decoder_ffn_embed_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
        dropout=0.0)


def nmt_expert(d: Dictionary, seed: int = 7, sharpness: float = 1.0) -> Expert:
    model = tiny_nmt(len(d), seed)
    with torch.no_grad():  # a peaked teacher: its cross-entropy can fall far below log |V|
        model.decoder.output_projection.weight.mul_(sharpness)
    return Expert(model, "nmt", d, None, "tiny nmt expert")


def make_batch(d: Dictionary, seed: int = 0, bsz: int = 4) -> dict:
    """A speech batch as st/data.py collates it: longest first, targets with EOS, expert_source ids."""
    g = torch.Generator().manual_seed(seed)
    frames = sorted((int(n) for n in torch.randint(10, 24, (bsz,), generator=g)), reverse=True)
    feats = [torch.randn(n, FEATS, generator=g) for n in frames]
    source, source_lengths = collate_features(feats)
    low, high = d.nspecial, d.nspecial + len(WORDS)
    targets = [torch.cat([torch.randint(low, high, (int(n),), generator=g), torch.tensor([d.eos()])])
               for n in torch.randint(2, 7, (bsz,), generator=g)]
    src = [torch.cat([torch.randint(low, high, (int(n),), generator=g), torch.tensor([d.eos()])])
           for n in torch.randint(2, 6, (bsz,), generator=g)]
    batch = {"source": source, "source_lengths": source_lengths, "nsentences": bsz,
             "expert_source": pad_sequences(src, d.pad()),
             "expert_source_lengths": torch.tensor([len(s) for s in src])}
    batch.update(collate_targets(targets, d))
    return batch


def criterion(name: str, d: Dictionary, expert: Expert | None, beta: str = "exponential", asr=None,
              **kd) -> object:
    cfg = CriterionConfig(name=name, kd=KDConfig(beta_schedule=beta, **kd))
    ctx = CriterionContext(tgt_dict=d, max_updates=100, expert=expert, asr=asr,
                           asr_dict=None if asr is None else d)
    return CRITERIA[name](cfg, ctx)


def student_greedy_prefixes(student, batch: dict, d: Dictionary) -> torch.Tensor:
    """The fully rolled-in prev_output_tokens computed independently: eval-mode greedy, then the fork's shift."""
    student.eval()
    enc = student.encode(batch["source"], batch["source_lengths"])
    max_len = rollin_max_len(batch["prev_output_tokens"], d.pad())
    hyps = greedy(student, enc, max_len, bos=d.eos(), eos=d.eos(), pad=d.pad(), unk=d.unk())
    student.train()
    everyone = torch.ones(len(hyps), dtype=torch.bool)
    return apply_rollin(batch["prev_output_tokens"], hyps, everyone, d.pad(), d.eos())


def reference_full(student, expert: Expert, batch: dict, prev: torch.Tensor, d: Dictionary) -> torch.Tensor:
    lprobs = log_softmax_fp32(student(batch["source"], batch["source_lengths"], prev))
    with torch.no_grad():
        enc = expert.model.encode(batch["expert_source"], batch["expert_source_lengths"])
        probs = torch.softmax(expert.model.decode(prev, enc).float(), dim=-1)
    return losses.imitkd_full(lprobs, probs, prev.eq(d.pad()))


def val(t: torch.Tensor) -> float:
    return float(t.detach())


def grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


class RecordingDecode:
    """Wraps a model's decode to record every teacher-forced (non-incremental) decoder input."""

    def __init__(self, model):
        self.inputs: list[torch.Tensor] = []
        self.original = model.decode
        model.decode = self

    def __call__(self, prev, enc, cache=None):
        if cache is None:
            self.inputs.append(prev.clone())
        return self.original(prev, enc, cache)


# ------------------------------------------------------------------------------------------------------ tests

def test_imitkd_full_at_beta_one_is_word_kd_loss_and_gradient():
    d = dictionary()
    batch, expert = make_batch(d), nmt_expert(d)
    student = tiny_s2t(len(d), 1)
    student.train()
    wkd = criterion("word_kd", d, expert)
    loss_w, size_w, _ = wkd(student, batch)
    loss_w.backward()
    g_w = grads(student)
    student.zero_grad()
    imit = criterion("imitkd_full", d, expert, beta="ones")
    loss_i, size_i, logs = imit(student, batch)
    loss_i.backward()
    assert size_w == size_i == batch["ntokens"]
    assert val(loss_i) == pytest.approx(val(loss_w), rel=1e-6)
    for a, b in zip(g_w, grads(student)):
        torch.testing.assert_close(a, b)
    assert logs["beta"] / batch["ntokens"] == 1.0 and logs["rollin_fraction"] == 0.0
    # and it is the hand-assembled expert cross-entropy on the gold prefixes
    ref = reference_full(student, expert, batch, batch["prev_output_tokens"], d)
    assert val(loss_w) == pytest.approx(val(ref), rel=1e-6)


def test_imitkd_full_at_beta_zero_trains_on_student_greedy_prefixes():
    d = dictionary()
    batch, expert = make_batch(d, seed=3), nmt_expert(d)
    student = tiny_s2t(len(d), 2)
    expected_prev = student_greedy_prefixes(student, batch, d)
    gold = batch["prev_output_tokens"]
    assert expected_prev.shape != gold.shape or not torch.equal(expected_prev, gold)
    rec = RecordingDecode(expert.model)
    crit = criterion("imitkd_full", d, expert, beta="zeros")
    student.train()
    loss, size, logs = crit(student, batch)
    assert student.training  # switched back after the eval-mode roll-in
    assert len(rec.inputs) == 1  # one teacher-forced expert pass over all positions
    torch.testing.assert_close(rec.inputs[0], expected_prev)
    assert val(loss) == pytest.approx(val(reference_full(student, expert, batch, expected_prev, d)), rel=1e-6)
    assert size == batch["ntokens"]  # normaliser: gold tokens, whatever the roll-in length
    assert logs["rollin_fraction"] / batch["ntokens"] == 1.0


def test_roll_in_from_the_shared_training_encoder_output_matches_without_dropout():
    """rollin_encoder = train decodes from the training forward's encoder output: with dropout 0 it must give
    the eval-mode roll-in's prefixes, loss and gradients (padded rows included: the batch's lengths differ)."""
    d = dictionary()
    batch, expert = make_batch(d, seed=4, bsz=6), nmt_expert(d)
    assert batch["source_lengths"].unique().numel() > 1
    student = tiny_s2t(len(d), 12)
    results = []
    for mode in ("eval", "train"):
        student.zero_grad()
        rec = RecordingDecode(expert.model)
        loss, _, _ = criterion("imitkd_full", d, expert, beta="zeros", rollin_encoder=mode)(student, batch)
        loss.backward()
        expert.model.decode = rec.original
        results.append((val(loss), rec.inputs[0], grads(student)))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1])
    assert len(results[0][2]) == len(results[1][2]) == len(list(student.parameters()))
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_roll_in_replaces_exactly_the_drawn_rows():
    d = dictionary()
    batch, expert = make_batch(d, seed=5, bsz=8), nmt_expert(d)
    student = tiny_s2t(len(d), 3)
    full = student_greedy_prefixes(student, batch, d)
    gold = batch["prev_output_tokens"]
    crit = criterion("imitkd_full", d, expert, beta="half")
    torch.manual_seed(11)
    replaced = draw_replaced_rows(gold.size(0), 0.5)
    assert 0 < int(replaced.sum()) < gold.size(0)
    rec = RecordingDecode(expert.model)
    torch.manual_seed(11)
    crit(student, batch)
    prev = rec.inputs[0]
    for i in range(gold.size(0)):
        row, want = prev[i], (full[i] if replaced[i] else gold[i])
        n = int(want.ne(d.pad()).sum())
        assert torch.equal(row[:n], want[:n]) and bool(row[n:].eq(d.pad()).all())


def test_beta_follows_the_fork_schedule_and_is_task_state():
    d = dictionary()
    crit = criterion("imitkd_full", d, nmt_expert(d))
    assert crit.beta.beta == 1.0
    crit.on_update(50)
    assert crit.beta.beta == pytest.approx(200 ** -0.5)
    state = crit.state_dict()
    fresh = criterion("imitkd_full", d, nmt_expert(d))
    fresh.load_state_dict(state)
    assert fresh.beta.beta == pytest.approx(200 ** -0.5)
    with pytest.raises(InputError, match="max_updates"):
        CRITERIA["imitkd_full"](CriterionConfig(name="imitkd_full"), CriterionContext(tgt_dict=d, expert=nmt_expert(d)))


def test_imitkd_optimal_is_nll_of_expert_argmax():
    d = dictionary()
    batch, expert = make_batch(d, seed=8), nmt_expert(d)
    student = tiny_s2t(len(d), 4)
    loss, _, _ = criterion("imitkd_optimal", d, expert, beta="ones")(student, batch)
    prev = batch["prev_output_tokens"]
    lprobs = log_softmax_fp32(student(batch["source"], batch["source_lengths"], prev))
    with torch.no_grad():
        enc = expert.model.encode(batch["expert_source"], batch["expert_source_lengths"])
        argmax = expert.model.decode(prev, enc).argmax(-1)
    ref = -(lprobs.gather(-1, argmax.unsqueeze(-1)).squeeze(-1).masked_fill(prev.eq(d.pad()), 0.0)).sum()
    assert val(loss) == pytest.approx(val(ref), rel=1e-6)


def test_mixers_interpolate_student_and_gold_terms():
    d = dictionary()
    batch, expert = make_batch(d, seed=9), nmt_expert(d)
    student = tiny_s2t(len(d), 5)
    gold, mask = batch["prev_output_tokens"], batch["target"].eq(d.pad())
    rollin = student_greedy_prefixes(student, batch, d)
    lp_g = log_softmax_fp32(student(batch["source"], batch["source_lengths"], gold))
    lp_r = log_softmax_fp32(student(batch["source"], batch["source_lengths"], rollin))
    with torch.no_grad():
        enc = expert.model.encode(batch["expert_source"], batch["expert_source_lengths"])
        e_g, e_r = expert.model.decode(gold, enc), expert.model.decode(rollin, enc)
    wkd = losses.word_kd(lp_g, torch.softmax(e_g, -1), mask)
    opt_gold = losses.imitkd_optimal(lp_g, e_g, mask)
    opt_roll = losses.imitkd_optimal(lp_r, e_r, rollin.eq(d.pad()))
    for name, gold_term in (("imitkd_mixer", wkd), ("imitkd_mixer_nll", opt_gold)):
        crit = criterion(name, d, expert, beta="linear", beta_total=10)
        crit.on_update(3)  # β = 0.7
        loss, size, _ = crit(student, batch)
        assert size == batch["ntokens"]
        assert val(loss) == pytest.approx(val(0.3 * opt_roll + 0.7 * gold_term), rel=1e-5)


def test_ast_expert_criteria_read_the_audio():
    d = dictionary()
    batch = make_batch(d, seed=10)
    del batch["expert_source"], batch["expert_source_lengths"]
    expert = Expert(tiny_s2t(len(d), 20), "st", d, None, "tiny ast expert")
    student = tiny_s2t(len(d), 6)
    loss_w, _, _ = criterion("ast_expert_word_kd", d, expert)(student, batch)
    loss_i, _, _ = criterion("ast_expert_imitkd", d, expert, beta="ones")(student, batch)
    prev = batch["prev_output_tokens"]
    lprobs = log_softmax_fp32(student(batch["source"], batch["source_lengths"], prev))
    with torch.no_grad():
        probs = torch.softmax(expert.model(batch["source"], batch["source_lengths"], prev), -1)
    ref = losses.word_kd(lprobs, probs, prev.eq(d.pad()))
    assert val(loss_w) == pytest.approx(val(ref), rel=1e-6)
    assert val(loss_i) == pytest.approx(val(ref), rel=1e-6)
    # the authors' probs == pad mask (named option) keeps the pad positions in the sum
    loss_bug, _, _ = criterion("ast_expert_imitkd", d, expert, beta="ones", pad_mask_bug=True)(student, batch)
    assert val(loss_bug) == pytest.approx(val(losses.word_kd(lprobs, probs, None)), rel=1e-6)
    assert val(loss_bug) > val(ref)
    with pytest.raises(InputError, match="NMT expert"):
        criterion("imitkd_full", d, expert)
    with pytest.raises(InputError, match="AST expert"):
        criterion("ast_expert_imitkd", d, nmt_expert(d))


def test_cascade_feeds_asr_greedy_transcripts_to_the_nmt_student():
    d = dictionary()
    batch, expert = make_batch(d, seed=12), nmt_expert(d)
    asr = tiny_s2t(len(d), 30)
    student = tiny_nmt(len(d), 31)
    max_len = rollin_max_len(batch["prev_output_tokens"], d.pad())
    enc = asr.encode(batch["source"], batch["source_lengths"])
    transcripts = greedy(asr, enc, max_len, bos=d.eos(), eos=d.eos(), pad=d.pad(), unk=d.unk())
    want_src = pad_sequences(transcripts, d.pad())
    seen = []
    original = student.encode
    student.encode = lambda src, lengths: (seen.append((src.clone(), lengths.clone())), original(src, lengths))[1]
    rec = RecordingDecode(expert.model)
    crit = criterion("cascade_nmt_imitkd", d, expert, beta="ones", asr=asr)
    loss, size, _ = crit(student, batch)
    torch.testing.assert_close(seen[-1][0], want_src)
    torch.testing.assert_close(seen[-1][1], torch.tensor([len(t) for t in transcripts]))
    torch.testing.assert_close(rec.inputs[0], batch["prev_output_tokens"])  # expert: gold src_text, β = 1
    # validation: gold NLL with the ASR transcripts as the student's source
    nll, ntokens = crit.valid_loss(student, batch)
    lprobs = log_softmax_fp32(student(want_src, seen[-1][1], batch["prev_output_tokens"]))
    ref_nll = -(lprobs.gather(-1, batch["target"].unsqueeze(-1)).squeeze(-1)
                .masked_fill(batch["target"].eq(d.pad()), 0.0)).sum()
    torch.testing.assert_close(seen[-2][0], want_src)
    assert val(nll) == pytest.approx(val(ref_nll), rel=1e-6) and ntokens == batch["ntokens"]
    # the ASR helper and the expert stay frozen
    assert not any(p.requires_grad for p in asr.parameters())
    assert not any(p.requires_grad for p in expert.model.parameters())


def test_kd_asr_input_nmt_gives_the_expert_asr_transcripts():
    d = dictionary()
    batch, expert = make_batch(d, seed=13), nmt_expert(d)
    asr = tiny_s2t(len(d), 40)
    max_len = rollin_max_len(batch["prev_output_tokens"], d.pad())
    transcripts = greedy(asr, asr.encode(batch["source"], batch["source_lengths"]), max_len, bos=d.eos(),
                         eos=d.eos(), pad=d.pad(), unk=d.unk())
    seen = []
    original = expert.model.encode
    expert.model.encode = lambda src, lengths: (seen.append(src.clone()), original(src, lengths))[1]
    student = tiny_s2t(len(d), 41)
    criterion("kd_asr_input_nmt", d, expert, asr=asr)(student, batch)
    torch.testing.assert_close(seen[0], pad_sequences(transcripts, d.pad()))


def test_expert_source_is_bpe_then_encode_line_with_unk(tmp_path):
    codes = tmp_path / "bpecodes"
    codes.write_text("h a 10\nd a 9\nha u 8\nhau s</w> 6\nda s</w> 5\n", encoding="utf-8")
    vocab = tmp_path / "dict.de.txt"
    vocab.write_text("haus 5\nk@@ 3\nl@@ 3\ni@@ 3\nn</w> 3\nn 3\ndas 4\n", encoding="utf-8")
    src_dict = Dictionary()
    for sym in ("haus", "das", "k@@"):
        src_dict.add_symbol(sym)
    enc = TextEncoder(BPE.from_codes(codes, vocab), src_dict)
    assert enc.bpe.apply("das haus klein") == "das haus k@@ l@@ e@@ i@@ n"
    tokens, lengths = transform_source_tokens_into_expert_voc(["das haus klein", "haus"], enc)
    u, e, p = src_dict.unk(), src_dict.eos(), src_dict.pad()
    want = torch.tensor([[src_dict.index("das"), src_dict.index("haus"), src_dict.index("k@@"), u, u, u, u, e],
                         [src_dict.index("haus"), e, p, p, p, p, p, p]])
    assert torch.equal(tokens, want) and lengths.tolist() == [8, 2]
    # the expert encodes src_text itself when a batch has no precomputed expert_source
    d = dictionary()
    expert = Expert(tiny_nmt(len(src_dict) if len(src_dict) > len(d) else len(d), 3), "nmt", d, enc, "x")
    src, src_len = expert.source({"src_text": ["das haus klein", "haus"]})
    assert torch.equal(src, want) and torch.equal(src_len, lengths)


FAIRSEQ = FAIRSEQ_FIXTURES


def test_fairseq_checkpoint_expert_scores_like_fairseq():
    """A fairseq transformer checkpoint (written by fairseq-fixed, tests/fixtures/fairseq) as the expert: frozen,
    kind nmt, its probabilities = softmax of fairseq's decoder logits; a different student vocabulary is refused."""
    names = ("transformer_nmt.pt", "transformer_nmt.io.pt", "nmt_dict.en.txt", "nmt_dict.de.txt", "nmt_bpecodes")
    if not all((FAIRSEQ / n).exists() for n in names):
        pytest.skip("fairseq fixtures (made with fairseq-fixed) not present")
    cfg = ExpertConfig(checkpoint=str(FAIRSEQ / "transformer_nmt.pt"), src_dict=str(FAIRSEQ / "nmt_dict.en.txt"),
                       tgt_dict=str(FAIRSEQ / "nmt_dict.de.txt"), bpe_codes=str(FAIRSEQ / "nmt_bpecodes"))
    student_dict = Dictionary.load(FAIRSEQ / "nmt_dict.de.txt")
    expert = load_expert(cfg, None, student_dict)
    assert expert.kind == "nmt" and not any(p.requires_grad for p in expert.model.parameters())
    io = torch.load(FAIRSEQ / "transformer_nmt.io.pt", weights_only=False)
    batch = {"expert_source": io["src_tokens"], "expert_source_lengths": io["src_lengths"]}
    probs = expert.probs(batch, io["prev_output_tokens"])
    nonpad = io["nonpad_mask"]
    torch.testing.assert_close(probs[nonpad], torch.softmax(io["decoder_logits"], -1)[nonpad], atol=1e-5, rtol=1e-4)
    with pytest.raises(InputError, match="target dictionary"):
        load_expert(cfg, None, dictionary())


def test_expert_runs_in_the_autocast_dtype_and_returns_float32_probs():
    d = dictionary()
    batch, expert = make_batch(d), nmt_expert(d)
    audio_expert = Expert(tiny_s2t(len(d), 20), "st", d, None, "tiny ast expert")
    prev = batch["prev_output_tokens"]
    for ex in (expert, audio_expert):
        ref = ex.probs(batch, prev)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = ex.probs(batch, prev)
        assert ex.dtype == torch.bfloat16  # cast once, not per op
        assert low.dtype == torch.float32
        torch.testing.assert_close(low, ref, atol=0.05, rtol=0.0)
        # later calls without autocast (e.g. a caller outside the trainer) still run, with the same numbers
        torch.testing.assert_close(ex.probs(batch, prev), low)


# ------------------------------------------------------------------------------- training with the trainer

class ToySpeech:
    """A tiny in-memory speech dataset with st/data.SpeechDataset's collate contract."""

    def __init__(self, d: Dictionary, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.d = d
        self.feats = [torch.randn(int(t), FEATS, generator=g) for t in torch.randint(10, 20, (n,), generator=g)]
        low, high = d.nspecial, d.nspecial + len(WORDS)
        self.targets = [torch.cat([torch.randint(low, high, (int(k),), generator=g), torch.tensor([d.eos()])])
                        for k in torch.randint(2, 6, (n,), generator=g)]
        self.sources = [torch.cat([torch.randint(low, high, (int(k),), generator=g), torch.tensor([d.eos()])])
                        for k in torch.randint(2, 6, (n,), generator=g)]
        self.lengths = np.array([len(f) for f in self.feats], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.feats)

    def target_lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.targets], dtype=np.int64)

    def collate(self, indices, specaugment=None, rng=None) -> dict:
        indices = sorted(indices, key=lambda i: -len(self.feats[i]))
        source, source_lengths = collate_features([self.feats[i] for i in indices])
        src = [self.sources[i] for i in indices]
        batch = {"id": [str(i) for i in indices], "index": torch.tensor(indices), "source": source,
                 "source_lengths": source_lengths, "nsentences": len(indices),
                 "expert_source": pad_sequences(src, self.d.pad()),
                 "expert_source_lengths": torch.tensor([len(s) for s in src])}
        batch.update(collate_targets([self.targets[i] for i in indices], self.d))
        return batch


def train(tmp_path, name: str, crit_name: str, updates: int, lr: float = 3e-3):
    d = dictionary()
    expert = nmt_expert(d, sharpness=20.0)
    data = ToySpeech(d, 8, seed=1)
    cfg = CriterionConfig(name=crit_name)
    ctx = CriterionContext(tgt_dict=d, max_updates=updates, expert=expert)
    crit = CRITERIA[crit_name](cfg, ctx)
    task = StTask(data, data, crit, max_tokens=10_000, max_sentences=8, required_batch_size_multiple=1,
                  helpers=[expert])
    train_cfg = TrainConfig(optimizer="adam", lr=lr, max_epochs=updates, max_updates=updates, device="cpu",
                            amp="none", progress=False, tensorboard=False, log_interval=1)
    run = Run(RunConfig(name=name, profile="test", runs_dir=str(tmp_path)), stage="st-train").start()
    student = tiny_s2t(len(d), 9)
    trainer = Trainer(train_cfg, run, student, task)
    return trainer, trainer.fit(), expert, data, crit


def test_word_kd_training_lowers_the_loss_and_never_saves_the_expert(tmp_path):
    trainer, _, expert, _, _ = train(tmp_path, "wkd", "word_kd", updates=25)
    log = [r for r in map(json.loads, trainer.run.log_path.read_text().splitlines())
           if "loss" in r and "event" not in r and "valid_loss" not in r]
    first, last = log[0]["loss"], log[-1]["loss"]
    assert last < 0.8 * first, (first, last)
    ckpt = load_checkpoint(trainer.run.checkpoint_dir / "checkpoint_last.pt")
    student_keys = set(trainer.model.state_dict())
    assert set(ckpt["model"]) == student_keys
    saved = sum(t.numel() for t in ckpt["model"].values())
    assert saved == sum(t.numel() for t in trainer.model.state_dict().values())
    # the optimiser holds exactly the student's parameters; the expert has no gradient and did not move
    n_params = len(list(trainer.model.parameters()))
    assert sum(len(g["params"]) for g in ckpt["optimizer"]["param_groups"]) == n_params
    assert all(not p.requires_grad and p.grad is None for p in expert.model.parameters())
    torch.testing.assert_close(expert.model.decoder.output_projection.weight,
                               nmt_expert(dictionary(), sharpness=20.0).model.decoder.output_projection.weight)
    assert not expert.model.training


def test_imitkd_beta_is_saved_with_the_task_state(tmp_path):
    trainer, metrics, *_ = train(tmp_path, "imit", "imitkd_full", updates=3)
    ckpt = load_checkpoint(trainer.run.checkpoint_dir / "checkpoint_last.pt")
    assert metrics["num_updates"] == 3
    assert ckpt["task"]["criterion"]["beta"]["beta"] == pytest.approx(200 ** (-3 / 3))
    assert not any(k.startswith("expert") for k in ckpt["model"])
    assert math.isfinite(metrics["best_valid_loss"])
