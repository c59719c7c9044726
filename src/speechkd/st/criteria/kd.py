"""The KD criteria of the ST pipeline, as the ImitKD-for-AST fork codes them (HubReb/imitkd_ast,
fairseq/fairseq/criterions/*.py; ast_paper.md §1.2-1.4). Registered in the package's registry (base.py):

  word_kd              kd_expert_copy.py (`kd`)                 WKD: expert distribution on gold prefixes
  imitkd_optimal       imitKD.py (`imit_kd`)                    NLL of the expert's argmax on mixed prefixes
  imitkd_full          imitKD_CE.py (`imit_kd_CE`)              expert distribution on mixed prefixes (the
                                                                 README's "ImitKD-full" rows)
  imitkd_mixer         imitKD_mixer.py (`imit_kd_mixer`)        β·WKD(gold) + (1-β)·ImitKD-optimal(student)
  imitkd_mixer_nll     imitKD_mixer_nll.py                      β·optimal(gold) + (1-β)·optimal(student)
  ast_expert_imitkd    imitKD_ast.py (`imit_kd_ast`)            imitkd_full with an AST expert on the same audio
  ast_expert_word_kd   imitKD_ast_pure_kd.py                    word_kd with an AST expert
  cascade_nmt_imitkd   imitKD_pipeline_nmt_training.py          NMT student reads a frozen ASR's greedy
                                                                 transcripts; imitkd_full against the expert
  kd_asr_input_nmt     kd_asr_transcripts.py                    word_kd, the EXPERT reads on-the-fly ASR
                                                                 transcripts

Common to all (the fork's behaviour): the expert is frozen and held by the task (st/expert.py); its targets are
used for every row, gold target tokens never enter a KD loss; losses are sums, sample_size = gold target tokens
(ntokens); validation is the gold NLL (Criterion.valid_loss). ImitKD roll-in (rollin.draw_replaced_rows and
rollin.apply_rollin): per sentence, with probability 1 - β the gold prefix is replaced by the student's greedy
hypothesis, decoded in eval mode under no_grad with max_len = min(cap, longest gold prefix - 1); β = 200^(-t/T)
after every update (kd/beta.py), part of the resumable task state.

Efficiency (PERFORMANCE.md): the replacement draw comes first and only the replaced rows are decoded, with the
KV-cached batched greedy search (decode/search.py); the expert encoder runs once per batch and its decoder
scores all positions of the (mixed) prefixes in one teacher-forced pass; the expert cross-entropy never builds
a (B, U, V) product (kd/sequence_losses.py). Modes are restored exactly (a model in eval mode stays there).
The roll-in's separate eval-mode encoder pass is the fork's; criterion.kd.rollin_encoder = train decodes from the
training forward's encoder output instead (one encoder pass less; the roll-in then sees encoder dropout).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ...errors import InputError
from ...kd import sequence_losses as losses
from ...kd.beta import TOTAL_KINDS, BetaSchedule
from ...kd.rollin import apply_rollin, draw_replaced_rows, rollin_max_len
from ...models.seq2seq import EncoderOut, Seq2SeqModel, log_softmax_fp32
from ...train.distributed import unwrap
from .base import Criterion, CriterionContext, LossOut, register
from .config import CriterionConfig, KDConfig


def beta_schedule(kd: KDConfig, max_updates: int) -> BetaSchedule:
    """The fork's per-update β rule, T = criterion.kd.beta_total or train.max_updates."""
    total = kd.beta_total or max_updates
    if kd.beta_schedule in TOTAL_KINDS and total <= 0:
        raise InputError(f"criterion.kd.beta_schedule = {kd.beta_schedule} needs T: set train.max_updates "
                         "(the fork's --max-update) or criterion.kd.beta_total")
    return BetaSchedule(kind=kd.beta_schedule, total=max(total, 1), base=kd.beta_base, final=kd.beta_final)


def trim_source(src: Tensor, lengths: Tensor) -> Tensor:
    """Drop padding columns beyond the longest row (after selecting a subset of a batch)."""
    return src[:, :int(lengths.max())] if lengths.numel() else src


@torch.no_grad()
def greedy_rows(model: Seq2SeqModel, src: Tensor, src_lengths: Tensor, rows: Tensor, max_len: int, pad: int,
                eos: int, unk: int, enc: EncoderOut | None = None) -> tuple[Tensor, Tensor]:
    """Greedy hypotheses (tokens (n, L) right-padded, each ending with EOS; lengths (n,)) of the selected rows,
    decoded as the fork's `SequenceGenerator([model], beam_size=1, max_len=...)` does: eval mode (dropout off),
    no grad, EOS as the first decoder input, EOS forbidden at step 0 and forced at step max_len
    (decode/search.greedy_tokens, equal to beam search with beam 1). The model's train/eval mode is restored.
    `enc`: an encoder output of the whole batch to decode from instead of encoding the rows again."""
    from ...decode.search import greedy_tokens
    was_training = model.training
    model.eval()
    try:
        if enc is None:
            lengths = src_lengths.index_select(0, rows)
            enc = model.encode(trim_source(src.index_select(0, rows), lengths), lengths)
        else:
            mask = None if enc.padding_mask is None else enc.padding_mask.index_select(0, rows)
            enc = EncoderOut(enc.out.detach().index_select(0, rows), mask)
            if mask is not None:  # trim frames that are padding in every selected row
                width = int((~mask).sum(dim=1).max())
                enc = EncoderOut(enc.out[:, :width], mask[:, :width] if bool(mask[:, :width].any()) else None)
        tokens, hyp_lengths = greedy_tokens(model, enc, max_len, bos=eos, eos=eos, pad=pad, unk=unk)
    finally:
        model.train(was_training)
    return tokens, hyp_lengths


def hypotheses_list(tokens: Tensor, lengths: Tensor, rows: Tensor, batch_size: int) -> list[Tensor | None]:
    """Per batch row: its hypothesis (1-D, ending with EOS) where decoded, None elsewhere."""
    hyps: list[Tensor | None] = [None] * batch_size
    for j, (i, n) in enumerate(zip(rows.tolist(), lengths.tolist())):
        hyps[i] = tokens[j, :n]
    return hyps


def pad_columns(tokens: Tensor, width: int, pad: int) -> Tensor:
    if tokens.size(1) >= width:
        return tokens
    return torch.cat([tokens, tokens.new_full((tokens.size(0), width - tokens.size(1)), pad)], dim=1)


class ExpertCriterion(Criterion):
    """Base of the criteria with an expert: checks its kind, holds the KD options."""
    needs_expert = True
    expert_kind: ClassVar[str] = "nmt"

    def __init__(self, cfg: CriterionConfig, ctx: CriterionContext):
        super().__init__(cfg, ctx)
        if ctx.expert is None:
            raise InputError(f"criterion.expert: criterion {self.name} needs an expert")
        if ctx.expert.kind != self.expert_kind:
            what = {"nmt": "an NMT expert (text source)", "st": "an AST expert (same audio)"}[self.expert_kind]
            raise InputError(f"criterion.expert: {self.name} needs {what}, but {ctx.expert.description} is "
                             f"a {ctx.expert.kind} model")
        self.expert = ctx.expert
        self.kd: KDConfig = cfg.kd
        self.unk = ctx.tgt_dict.unk()

    def student_source(self, batch: dict) -> tuple[Tensor, Tensor]:
        """The student's input (the cascade replaces it by ASR transcripts)."""
        return batch["source"], batch["source_lengths"]

    def student_lprobs(self, model: torch.nn.Module, src: Tensor, src_lengths: Tensor, prev: Tensor,
                       enc: EncoderOut | None = None) -> Tensor:
        """log p_S (B, U, V) in float32. Normally one call of model(...) per batch, so that DDP sees the forward
        (train/trainer.py protocol); with `enc` (the roll-in's shared training-mode encoder output) only the
        decoder runs."""
        if enc is not None:
            return log_softmax_fp32(unwrap(model).decode(prev, enc))
        return log_softmax_fp32(model(src, src_lengths, prev))

    def expert_cross_entropy(self, lprobs: Tensor, expert_probs: Tensor, pad_mask: Tensor) -> Tensor:
        return losses.imitkd_full(lprobs, expert_probs, pad_mask, pad_mask_bug=self.kd.pad_mask_bug,
                                  pad_idx=self.pad)


class RollinCriterion(ExpertCriterion):
    """ImitKD criteria: β schedule and the per-sentence roll-in."""

    def __init__(self, cfg: CriterionConfig, ctx: CriterionContext):
        super().__init__(cfg, ctx)
        self.beta = beta_schedule(cfg.kd, ctx.max_updates)

    def on_update(self, num_updates: int) -> None:
        self.beta.on_update(num_updates)

    def state_dict(self) -> dict:
        return {"beta": self.beta.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if "beta" in state:
            self.beta.load_state_dict(state["beta"])

    def rollin(self, model: torch.nn.Module, src: Tensor, src_lengths: Tensor, gold_prev: Tensor,
               replaced: Tensor, enc: EncoderOut | None = None) -> Tensor:
        """The mixed prev_output_tokens: rows flagged in `replaced` (B,) bool get the student's greedy
        hypothesis (generate_imit_batch), the others keep their gold prefix."""
        rows = replaced.to(src.device).nonzero().squeeze(1)
        if rows.numel() == 0:
            return gold_prev
        max_len = rollin_max_len(gold_prev, self.pad, self.kd.rollin_max_len_cap)
        tokens, lengths = greedy_rows(unwrap(model), src, src_lengths, rows, max_len, self.pad, self.eos,
                                      self.unk, enc)
        hyps = hypotheses_list(tokens, lengths, rows, gold_prev.size(0))
        return apply_rollin(gold_prev, hyps, replaced, self.pad, self.eos)

    def shares_encoder(self, model: torch.nn.Module) -> bool:
        """criterion.kd.rollin_encoder = train, except under DDP (which must see one model(...) forward)."""
        return self.kd.rollin_encoder == "train" and not isinstance(model, DistributedDataParallel)

    def mixed_prefixes(self, model: torch.nn.Module, src: Tensor, src_lengths: Tensor,
                       gold_prev: Tensor) -> tuple[Tensor, Tensor, EncoderOut | None]:
        """(prev, replaced, enc): enc is the training-mode encoder output when the roll-in shares it (the
        student's loss then decodes from it), else None (the fork: a separate eval-mode encoder pass)."""
        # the draw does not depend on the hypotheses: draw first, decode only the replaced rows
        replaced = draw_replaced_rows(gold_prev.size(0), self.beta.beta)
        enc = unwrap(model).encode(src, src_lengths) if self.shares_encoder(model) else None
        return self.rollin(model, src, src_lengths, gold_prev, replaced, enc), replaced, enc

    def logs(self, batch: dict, replaced: Tensor) -> dict[str, float]:
        # the trainer divides logging sums by sample_size: weight by it so that the reported value is β itself
        ntokens = float(batch["ntokens"])
        return {"beta": self.beta.beta * ntokens,
                "rollin_fraction": float(replaced.float().mean()) * ntokens}


# --------------------------------------------------------------------------------------------- word-level KD

@register("word_kd")
class WordKD(ExpertCriterion):
    """kd_expert_copy.py (`kd`, the README's KD/KDT rows): -Σ_t Σ_v p_E(v | x_src, y_<t)·log p_S(v | audio, y_<t)
    on the gold prefixes, pads of the gold target masked, no gold-NLL term."""

    def expert_input(self, batch: dict) -> EncoderOut:
        return self.expert.encode(batch)

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        src, src_lengths = self.student_source(batch)
        prev = batch["prev_output_tokens"]
        expert_probs = self.expert.probs(batch, prev, self.expert_input(batch))
        lprobs = self.student_lprobs(model, src, src_lengths, prev)
        loss = self.expert_cross_entropy(lprobs, expert_probs, batch["target"].eq(self.pad))
        return loss, int(batch["ntokens"]), {}


@register("ast_expert_word_kd")
class AstExpertWordKD(WordKD):
    """imitKD_ast_pure_kd.py (`imit_kd_ast_pure_kd`): word-level KD from an AST expert that reads the same
    (augmented) audio as the student."""
    expert_kind = "st"


# --------------------------------------------------------------------------------------------------- ImitKD

@register("imitkd_full")
class ImitKDFull(RollinCriterion):
    """imitKD_CE.py (`imit_kd_CE`, the README's ImitKD-full / ImitKDT-full rows): cross-entropy against the full
    expert distribution on the mixed prefixes, pads of the mixed prefixes masked. β = 1 is word-level KD; β -> 0
    is on-policy KD on the student's own greedy prefixes."""

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        src, src_lengths = self.student_source(batch)
        prev, replaced, enc = self.mixed_prefixes(model, src, src_lengths, batch["prev_output_tokens"])
        expert_probs = self.expert.probs(batch, prev)
        lprobs = self.student_lprobs(model, src, src_lengths, prev, enc)
        loss = self.expert_cross_entropy(lprobs, expert_probs, prev.eq(self.pad))
        return loss, int(batch["ntokens"]), self.logs(batch, replaced)


@register("ast_expert_imitkd")
class AstExpertImitKD(ImitKDFull):
    """imitKD_ast.py (`imit_kd_ast`): ImitKD-full with an AST expert on the same audio. The coded mask compares
    probabilities with the pad index (criterion.kd.pad_mask_bug = true reproduces it; off by default since no
    reported number uses this criterion)."""
    expert_kind = "st"


@register("imitkd_optimal")
class ImitKDOptimal(RollinCriterion):
    """imitKD.py (`imit_kd`): -Σ_t log p_S(argmax_v p_E(v | x_src, y_<t) | audio, y_<t) on the mixed prefixes.
    Only the expert's argmax is needed, so its softmax is skipped. Pads: those of the mixed prefixes (imitKD.py
    masks by the gold target's pads, which is the same set for gold rows and has no meaning for roll-in rows of
    another length)."""

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        src, src_lengths = self.student_source(batch)
        prev, replaced, enc = self.mixed_prefixes(model, src, src_lengths, batch["prev_output_tokens"])
        expert_logits = self.expert.logits(batch, prev)
        lprobs = self.student_lprobs(model, src, src_lengths, prev, enc)
        loss = losses.imitkd_optimal(lprobs, expert_logits, prev.eq(self.pad))
        return loss, int(batch["ntokens"]), self.logs(batch, replaced)


@register("imitkd_mixer")
class ImitKDMixer(RollinCriterion):
    """imitKD_mixer.py (`imit_kd_mixer`): (1 - β)·ImitKD-optimal on 100 % student roll-ins + β·WKD on the gold
    prefixes. The student runs on both prefix sets in ONE forward (the batch stacked twice: two encoder passes
    with their own dropout, as the fork's two forwards), the expert encoder once and its decoder once over both."""
    gold_term_nll: ClassVar[bool] = False

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        src, src_lengths = self.student_source(batch)
        gold = batch["prev_output_tokens"]
        bsz = gold.size(0)
        everyone = torch.ones(bsz, dtype=torch.bool)
        rollin = self.rollin(model, src, src_lengths, gold, everyone)
        width = max(rollin.size(1), gold.size(1))
        both = torch.cat([pad_columns(rollin, width, self.pad), pad_columns(gold, width, self.pad)])
        enc = self.expert.encode(batch)
        twice = torch.arange(bsz, device=gold.device).repeat(2)
        expert_logits = self.expert.logits(batch, both, enc.index_select(twice))
        lprobs = self.student_lprobs(model, src.index_select(0, twice), src_lengths.index_select(0, twice), both)
        ur, ug = rollin.size(1), gold.size(1)
        lp_roll, lp_gold = lprobs[:bsz, :ur], lprobs[bsz:, :ug]
        e_roll, e_gold = expert_logits[:bsz, :ur], expert_logits[bsz:, :ug]
        beta = self.beta.beta
        gold_mask = batch["target"].eq(self.pad)
        if self.gold_term_nll:
            loss = losses.imitkd_mixer_nll(lp_roll, e_roll, rollin.eq(self.pad), lp_gold, e_gold, gold_mask, beta)
        else:
            loss = losses.imitkd_mixer(lp_roll, e_roll, rollin.eq(self.pad), lp_gold,
                                       log_softmax_fp32(e_gold).exp_(), gold_mask, beta)
        return loss, int(batch["ntokens"]), self.logs(batch, everyone)


@register("imitkd_mixer_nll")
class ImitKDMixerNll(ImitKDMixer):
    """imitKD_mixer_nll.py (`imit_kd_mixer_nll`): the β-term is the NLL of the expert's argmax on gold prefixes."""
    gold_term_nll = True


# ------------------------------------------------------------------------------- on-the-fly ASR transcripts

class AsrTranscripts:
    """A frozen ASR model that greedily transcribes a batch's audio (the fork's pipeline criteria: beam 1,
    SequenceGenerator with the roll-in's max_len rule, eval mode, no grad). Transcripts end with EOS, as
    fairseq-encoded sources do, and are right-padded."""

    def __init__(self, model: Seq2SeqModel, pad: int, eos: int, unk: int, cap: int):
        self.model, self.pad, self.eos, self.unk, self.cap = model, pad, eos, unk, cap
        self.model.eval()
        self.model.requires_grad_(False)

    def __call__(self, batch: dict) -> tuple[Tensor, Tensor]:
        src, lengths = batch["source"], batch["source_lengths"]
        max_len = rollin_max_len(batch["prev_output_tokens"], self.pad, self.cap)
        rows = torch.arange(src.size(0), device=src.device)
        tokens, hyp_lengths = greedy_rows(self.model, src, lengths, rows, max_len, self.pad, self.eos, self.unk)
        return tokens, hyp_lengths


def _asr_of(ctx: CriterionContext, name: str, cap: int) -> AsrTranscripts:
    if ctx.asr is None or ctx.asr_dict is None:
        raise InputError(f"criterion.asr_run: {name} transcribes the audio on the fly with a frozen ASR model")
    d = ctx.asr_dict
    return AsrTranscripts(ctx.asr, d.pad(), d.eos(), d.unk(), cap)


@register("cascade_nmt_imitkd")
class CascadeNmtImitKD(ImitKDFull):
    """imitKD_pipeline_nmt_training.py (`imit_pipeline_nmt_training`): cascade NMT training with ImitKD-full.
    A frozen ASR model greedily transcribes the audio; those tokens are the NMT student's source (the ASR's
    dictionary must be the student's); the expert reads the gold src_text; roll-in and loss as imitkd_full.
    Validation feeds the student the ASR transcripts too (gold NLL, no prefix replacement)."""
    needs_asr = True

    def __init__(self, cfg: CriterionConfig, ctx: CriterionContext):
        super().__init__(cfg, ctx)
        if ctx.asr_dict is not None and ctx.asr_dict != ctx.tgt_dict:
            raise InputError("criterion.asr_run: the ASR model's dictionary differs from the NMT student's: its "
                             "transcripts are the student's source ids (train both on the same prep run)")
        self.asr = _asr_of(ctx, self.name, cfg.kd.rollin_max_len_cap)

    def student_source(self, batch: dict) -> tuple[Tensor, Tensor]:
        return self.asr(batch)

    def valid_loss(self, model: torch.nn.Module, batch: dict) -> tuple[Tensor, int]:
        src, src_lengths = self.student_source(batch)
        lprobs = log_softmax_fp32(model(src, src_lengths, batch["prev_output_tokens"]))
        _, nll = losses.label_smoothed_nll(lprobs, batch["target"], 0.0, ignore_index=self.pad)
        return nll, int(batch["ntokens"])


@register("kd_asr_input_nmt")
class KDAsrInputNmt(WordKD):
    """kd_asr_transcripts.py (`kd_asr_input_nmt`, "KDT with on-the-fly transcripts"): word-level KD where the
    EXPERT reads a frozen ASR's greedy transcript of the audio instead of the dataset's src_text. The ASR must
    output the expert's source vocabulary."""
    needs_asr = True

    def __init__(self, cfg: CriterionConfig, ctx: CriterionContext):
        super().__init__(cfg, ctx)
        source_dict = self.expert.source_encoder.dictionary if self.expert.source_encoder is not None else None
        if ctx.asr_dict is not None and source_dict is not None and ctx.asr_dict != source_dict:
            raise InputError("criterion.asr_run: the ASR model's dictionary differs from the expert's source "
                             "dictionary: its transcripts are the expert's input ids")
        self.asr = _asr_of(ctx, self.name, cfg.kd.rollin_max_len_cap)

    def expert_input(self, batch: dict) -> EncoderOut:
        return self.expert.encode_tokens(*self.asr(batch))
