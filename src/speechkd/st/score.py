"""st-score: score fairseq-generate logs as the authors did (HubReb/imitkd_ast eval_script.sh).

Translation (tasks st, nmt): get_references_and_hypothesis.py takes every T- line (reference) and D- line
(hypothesis) in file order; `sacremoses -l de -q detokenize` is applied to both (the TSV text is Moses-tokenised);
`sacrebleu REF -i HYP -m bleu ter chrf --chrf-word-order 2`: sacreBLEU's defaults (13a, mixed case, exp smoothing),
chrF++ and TER, each reported with its signature.
ASR: WER as the fairseq S2T recipes score it (--wer-tokenizer 13a --wer-lowercase --wer-remove-punct), after
Moses-detokenising both sides (our transcripts are Moses-tokenised by st-prep, fairseq's were raw).

The logs may come from st-generate or from fairseq-generate itself (e.g. the authors' released outputs).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Sequence

from ..config import RunConfig, option
from ..errors import InputError
from ..interop.fairseq_generate import references_and_hypotheses
from ..runs import Run
from .paths import external, finished_run, is_current, start_run, upstream_state


def score_translation(refs: Sequence[str], hyps: Sequence[str], lang: str = "de") -> dict:
    """{bleu, chrf, ter} scores and their signatures (flat keys)."""
    from ..metrics.translation import score_translations
    if not refs:
        raise InputError("nothing to score: no T-/D- lines")
    scores = score_translations(hyps, refs, detok_lang=lang)
    out: dict = {}
    for key, s in scores.items():
        out[key] = round(s.score, 2)
        out[f"{key}_signature"] = s.signature
    return out


def score_asr(refs: Sequence[str], hyps: Sequence[str], lang: str = "en") -> dict:
    from ..metrics.asr import FAIRSEQ_S2T_RECIPE, wer
    from ..tokenizers.moses import detokenize
    if not refs:
        raise InputError("nothing to score: no T-/D- lines")
    rate = wer([detokenize(r, lang) for r in refs], [detokenize(h, lang) for h in hyps], **FAIRSEQ_S2T_RECIPE)
    return {"wer": round(rate.score, 2), "wer_errors": rate.errors, "wer_ref_words": rate.ref_length}


def score_log(path: Path, task: str, lang: str) -> dict:
    refs, hyps = references_and_hypotheses(path)
    if len(refs) != len(hyps):
        raise InputError(f"{path}: {len(refs)} T- lines but {len(hyps)} D- lines (use an n-best of 1)")
    return score_asr(refs, hyps, lang) if task == "asr" else score_translation(refs, hyps, lang)


def prefixed(prefix: str, scores: dict) -> dict:
    """dev + {bleu: x, bleu_signature: s} -> {dev_bleu: x, bleu_signature: s} (signatures are split-independent)."""
    return {(k if k.endswith("_signature") else f"{prefix}_{k}"): v for k, v in scores.items()}


@dataclasses.dataclass
class Config(RunConfig):
    task: Literal["st", "nmt", "asr"] = option("st", "asr: WER; st / nmt: BLEU, chrF++, TER")
    generate_run: str = option("", "an st-generate run: its generate-<split>.txt logs are scored")
    logs: dict[str, str] = option({}, "or explicit logs: metric prefix -> fairseq-generate log path "
                                      "(relative to data_root), e.g. {\"test\": \"generate-tst-COMMON.txt\"}")
    splits: dict[str, str] = option({"dev": "dev", "test": "test"},
                                    "with generate_run: metric prefix -> split name (MuST-C: test -> tst-COMMON)")
    lang: str = option("de", "language of the references for Moses detokenisation (en for ASR)")
    data_root: str = option("", "root of relative log paths")

    def __post_init__(self) -> None:
        if bool(self.generate_run) == bool(self.logs):
            raise ValueError("set generate_run or logs (one of them)")


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="st-score")
    upstream = upstream_state(cfg, [cfg.generate_run])
    if is_current(run_, upstream):
        return run_.metrics()
    if cfg.generate_run:
        gen_dir = finished_run(cfg, cfg.generate_run, "generate_run")
        logs = {prefix: gen_dir / f"generate-{split}.txt" for prefix, split in cfg.splits.items()}
    else:
        logs = {prefix: external(cfg.data_root, path) for prefix, path in cfg.logs.items()}
    start_run(run_, upstream)
    metrics: dict = {}
    for prefix, path in logs.items():
        metrics.update(prefixed(prefix, score_log(path, cfg.task, cfg.lang)))
    print(f"[st-score] {run_.name}: " + ", ".join(f"{k}={v}" for k, v in metrics.items() if "signature" not in k))
    return run_.finish(metrics)
