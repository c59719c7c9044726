"""The frozen expert of the KD criteria, held by the task (never by the student model): an NMT expert that reads
the source transcript in its own vocabulary, or an AST expert that reads the same audio as the student.

Sources (ast_paper.md §1.1):
- our own st-train run (`run`): the embedded NMT expert (task nmt) or an AST expert (task st); its BPE codes and
  dictionary are those of the prep run it was trained on;
- a fairseq checkpoint (`checkpoint`, e.g. wmt19.en-de.joined-dict.ensemble/model1.pt) with the fork's
  --expert-vocab-src (dict.en.txt), --expert-vocab-tgt (dict.de.txt) and --bpe-codes (bpecodes). The fork loads
  ONE checkpoint (the last of the list) with load_model_ensemble, no ensembling.
The expert runs in eval mode with requires_grad off; the student must share its target dictionary (the fork
points the S2T config's vocab at the expert's dict), which load_expert checks symbol by symbol.

The expert's source: fastBPE with the expert's codes restricted to its target dict (the fork passes
--expert-vocab-tgt to fastBPE.fastBPE), then `expert_vocab_src.encode_line(add_if_not_exist=False,
append_eos=True)` (transform_source_tokens_into_expert_voc). The data layer does this per sentence (st/data.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from ..config import option
from ..data.batching import pad_sequences
from ..errors import InputError
from ..models.seq2seq import EncoderOut, Seq2SeqModel, log_softmax_fp32
from ..tokenizers.dictionary import Dictionary
from ..runs import data_path, require_file
from .vocab import CODES_FILE, DICT_FILE, TextEncoder


@dataclasses.dataclass
class ExpertConfig:
    run: str = option("", "our st-train run of the expert (task nmt: the NMT expert; task st: an AST expert)", run_ref=True)
    checkpoint: str = option("", "instead of run: a fairseq checkpoint (e.g. wmt19.en-de.joined-dict.ensemble/"
                                 "model1.pt), relative to data_root")
    src_dict: str = option("", "fairseq expert: its source dict (--expert-vocab-src, dict.en.txt)")
    tgt_dict: str = option("", "fairseq expert: its target dict (--expert-vocab-tgt, dict.de.txt)")
    bpe_codes: str = option("", "fairseq expert: its fastBPE codes (--bpe-codes, bpecodes)")
    checkpoint_file: Literal["best", "last"] = option("best", "our run: which checkpoint the expert is")

    def __post_init__(self) -> None:
        if self.run and self.checkpoint:
            raise ValueError("criterion.expert: set run (our expert) or checkpoint (a fairseq one), not both")

    @property
    def configured(self) -> bool:
        return bool(self.run or self.checkpoint)


def transform_source_tokens_into_expert_voc(src_text: list[str], encoder: TextEncoder,
                                            device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """The fork's `transform_source_tokens_into_expert_voc` (imitKD_CE.py & co.): each raw (Moses-tokenised)
    transcript -> fastBPE with the expert's codes -> `expert_vocab_src.encode_line(add_if_not_exist=False,
    append_eos=True)` (unknown pieces -> <unk>) -> right-padded with the expert's pad. Returns (tokens (B, S),
    lengths (B,)) on `device`. The data layer does the same per sentence at collate time (st/data.py)."""
    rows = [encoder.encode(text, append_eos=True) for text in src_text]
    tokens = pad_sequences(rows, encoder.dictionary.pad())
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    return tokens.to(device), lengths.to(device)


class Expert:
    """A frozen teacher. kind "nmt": reads the source transcript in its own vocabulary (batch["expert_source"],
    or batch["src_text"] encoded on the fly); kind "st": the batch's audio.

    Not an nn.Module on purpose, and held by the criterion/task, never by the student: its parameters never
    enter the student's optimiser or checkpoints (the fork's criterion-held expert went into both; ast_paper.md
    §2.1 gotchas). Every call runs under no_grad in eval mode; under bf16 autocast in bf16 weights (_precision)."""

    def __init__(self, model: Seq2SeqModel, kind: str, tgt_dict: Dictionary, source_encoder: TextEncoder | None,
                 description: str):
        if kind not in ("nmt", "st"):
            raise ValueError(f"expert kind must be nmt or st, got {kind!r}")
        self.model, self.kind, self.tgt_dict = model, kind, tgt_dict
        self.source_encoder, self.description = source_encoder, description
        self.model.eval()
        self.model.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Expert":
        self.model.to(device=device, dtype=dtype)
        return self

    def _precision(self) -> contextlib.AbstractContextManager:
        """Under bf16 autocast the frozen weights are cast to bf16 once (autocast would cast every matmul weight in
        every step, and keep a second copy while doing so). A bf16 expert then always runs under autocast of its
        dtype, so normalisations and softmaxes stay in float32 whoever calls it (a cast back up would not restore
        the rounded weights)."""
        device_type = self.device.type
        if torch.is_autocast_enabled(device_type) and self.dtype == torch.float32:
            dtype = torch.get_autocast_dtype(device_type)
            if dtype != torch.float32:
                self.model.to(dtype=dtype)
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=self.dtype)

    def source(self, batch: dict) -> tuple[Tensor, Tensor]:
        """The expert's input for `batch`: (tokens, lengths) of the transcript (nmt) or (features, lengths)."""
        if self.kind == "st":
            return batch["source"], batch["source_lengths"]
        if "expert_source" in batch:
            return batch["expert_source"], batch["expert_source_lengths"]
        if "src_text" in batch and self.source_encoder is not None:
            return transform_source_tokens_into_expert_voc(batch["src_text"], self.source_encoder, self.device)
        raise InputError("the NMT expert needs the batches' source transcripts (src_text, or expert_source ids): "
                         "the manifest must have a src_text column")

    @torch.no_grad()
    def encode_tokens(self, src: Tensor, src_lengths: Tensor) -> EncoderOut:
        """Run the encoder once on explicit inputs (e.g. on-the-fly ASR transcripts)."""
        self.model.eval()  # never in training mode, whatever a caller did to the module tree
        with self._precision():
            return self.model.encode(src, src_lengths)

    def encode(self, batch: dict) -> EncoderOut:
        return self.encode_tokens(*self.source(batch))

    @torch.no_grad()
    def logits(self, batch: dict, prev_output_tokens: Tensor, enc: EncoderOut | None = None) -> Tensor:
        """Expert logits (B, U, V) for all positions of `prev_output_tokens` in one teacher-forced pass."""
        enc = self.encode(batch) if enc is None else enc
        self.model.eval()
        with self._precision():
            return self.model.decode(prev_output_tokens, enc)

    @torch.no_grad()
    def probs(self, batch: dict, prev_output_tokens: Tensor, enc: EncoderOut | None = None) -> Tensor:
        """p_E(v | x, y_<t) (B, U, V) in float32 (fairseq get_normalized_probs(log_probs=False): softmax of the
        float32 logits), all positions in one pass."""
        return log_softmax_fp32(self.logits(batch, prev_output_tokens, enc)).exp_()


def load_expert(cfg: ExpertConfig, pipeline_cfg: Any, student_dict: Dictionary, data_root: str = "") -> Expert:
    """The expert of `cfg`; pipeline_cfg (the st-train config) locates our runs. Checks the shared vocabulary."""
    if cfg.run:
        from .models import load_trained_model
        trained = load_trained_model(pipeline_cfg, cfg.run, "criterion.expert.run", cfg.checkpoint_file)
        if trained.task == "asr":
            raise InputError(f"criterion.expert.run: '{cfg.run}' is an ASR run; the expert translates (nmt or st)")
        tgt_dict, kind = trained.dictionary, trained.task
        source_encoder = None
        if kind == "nmt":
            source_encoder = TextEncoder.load(trained.prep_dir / CODES_FILE, trained.prep_dir / DICT_FILE,
                                              restrict_to_dict=True)
        expert = Expert(trained.model, kind, tgt_dict, source_encoder,
                        f"run {cfg.run} ({trained.checkpoint})")
    elif cfg.checkpoint:
        expert = _load_fairseq_expert(cfg, data_root)
    else:
        raise InputError("criterion.expert: this criterion needs an expert (set criterion.expert.run or "
                         "criterion.expert.checkpoint)")
    check_shared_vocabulary(expert.tgt_dict, student_dict)
    return expert


def check_shared_vocabulary(expert_dict: Dictionary, student_dict: Dictionary) -> None:
    if expert_dict != student_dict:
        raise InputError(f"criterion.expert: the expert's target dictionary ({len(expert_dict)} symbols) differs "
                         f"from the student's ({len(student_dict)}): student and expert must share the vocabulary "
                         "(train the student on a prep run made with the expert's bpecodes and dict)")


def fairseq_expert_file(cfg: ExpertConfig, name: str, data_root: str) -> Path:
    """criterion.expert.<name> (checkpoint, tgt_dict, src_dict, bpe_codes) as an existing file."""
    value = getattr(cfg, name)
    if not value:
        raise InputError(f"criterion.expert.{name}: needed with a fairseq expert checkpoint")
    return require_file(data_path(data_root, value), f"criterion.expert.{name}", name.replace("_", " "))


def check_expert_inputs(cfg: ExpertConfig, pipeline_cfg: Any, student_dict: Dictionary, data_root: str = "") -> bool:
    """What load_expert reads, checked without loading a model: st-train calls it before building anything, so a
    missing dictionary or checkpoint fails in seconds, not after the student and its data were set up. Returns
    whether the expert reads the transcripts (an NMT expert: our nmt run, or a fairseq one given a src_dict)."""
    if cfg.run:
        from .models import trained_run
        return trained_run(pipeline_cfg, cfg.run, "criterion.expert.run", cfg.checkpoint_file).config["task"] == "nmt"
    if not cfg.checkpoint:
        raise InputError("criterion.expert: this criterion needs an expert (set criterion.expert.run or "
                         "criterion.expert.checkpoint)")
    fairseq_expert_file(cfg, "checkpoint", data_root)
    tgt_dict = Dictionary.load(fairseq_expert_file(cfg, "tgt_dict", data_root))
    for name in ("src_dict", "bpe_codes"):  # needed by an NMT expert, which only loading the checkpoint tells
        if getattr(cfg, name):
            fairseq_expert_file(cfg, name, data_root)
    check_shared_vocabulary(tgt_dict, student_dict)
    return bool(cfg.src_dict)


def _load_fairseq_expert(cfg: ExpertConfig, data_root: str) -> Expert:
    from ..interop.fairseq_models import load_fairseq_model
    from ..models.transformer_nmt import TransformerNMTModel
    from ..tokenizers.bpe import BPE

    def path(name: str) -> Path:
        return fairseq_expert_file(cfg, name, data_root)

    checkpoint, tgt_dict_path = path("checkpoint"), path("tgt_dict")
    model, _ = load_fairseq_model(checkpoint)
    tgt_dict = Dictionary.load(tgt_dict_path)
    if not isinstance(model, TransformerNMTModel):  # an AST expert reads the audio: no source vocabulary
        return Expert(model, "st", tgt_dict, None, f"fairseq checkpoint {checkpoint}")
    # fastBPE.fastBPE(bpe_codes, expert_vocab_tgt), then expert_vocab_src.encode_line, as the fork's criterion
    source_encoder = TextEncoder(BPE.from_codes(path("bpe_codes"), tgt_dict_path), Dictionary.load(path("src_dict")))
    return Expert(model, "nmt", tgt_dict, source_encoder, f"fairseq checkpoint {checkpoint}")
