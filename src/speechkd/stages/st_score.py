"""st-score: score fairseq-generate logs as the authors did (HubReb/imitkd_ast eval_script.sh).

Translation (tasks st, nmt): `sacremoses -l de -q detokenize` on the hypotheses (D- lines; our text is
Moses-tokenised), then `sacrebleu REF -i HYP -m bleu ter chrf --chrf-word-order 2`: sacreBLEU's defaults (13a,
mixed case, exp smoothing), chrF++ and TER, each reported with its signature. REF is always the corpus's own raw
text, never references rebuilt from token ids (the authors' get_references_and_hypothesis.py took the T- lines:
every out-of-vocabulary word is <unk> there, 9.7 instead of 17.0 BLEU on OOV-heavy sentences): the T- lines of an
st-generate run (which holds the raw text), or for other logs a raw reference file per log (line i = sample i).
ASR: WER as the fairseq S2T recipes score it (--wer-tokenizer 13a --wer-lowercase --wer-remove-punct), after
Moses-detokenising both sides (our transcripts are Moses-tokenised by st-prep, fairseq's were raw).

The logs may come from st-generate or from fairseq-generate itself (e.g. the authors' released outputs).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal, Sequence

from ..config import DataRunConfig, option
from ..errors import InputError
from ..interop.fairseq_generate import read_generate_log, references_and_hypotheses
from ..runs import Run, data_path, finished_run, require_file, run_config
from ..st.vocab import RAW_REFERENCES


def score_translation(raw_refs: Sequence[str], hyps: Sequence[str], lang: str = "de") -> dict:
    """{bleu, chrf, ter} scores and their signatures (flat keys) of the detokenised hypotheses against the
    corpus's raw references (left as they are)."""
    from ..metrics.translation import score_translations
    if not raw_refs:
        raise InputError("nothing to score: no T-/D- lines")
    scores = score_translations(hyps, raw_refs, detok_lang=lang, refs_raw=True)
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


def score_log(path: Path, task: str, lang: str, raw_refs: Path | None = None) -> dict:
    """raw_refs: the raw reference file of a log whose T- lines are not the corpus's text."""
    if raw_refs is not None and task != "asr":
        return score_translation(*by_sample_id(path, raw_refs), lang)
    refs, hyps = references_and_hypotheses(path)
    if len(refs) != len(hyps):
        raise InputError(f"{path}: {len(refs)} T- lines but {len(hyps)} D- lines (use an n-best of 1)")
    return score_asr(refs, hyps, lang) if task == "asr" else score_translation(refs, hyps, lang)


def by_sample_id(log: Path, raw_refs: Path) -> tuple[list[str], list[str]]:
    """(references, hypotheses) pairing line i of the raw reference file with the D- line of sample i."""
    refs = raw_refs.read_text(encoding="utf-8").split("\n")
    if refs and refs[-1] == "":
        refs.pop()
    records = read_generate_log(log).records
    if sorted(records) != list(range(len(refs))):
        raise InputError(f"{log}: sample ids {min(records, default=None)}..{max(records, default=None)} "
                         f"({len(records)} sentences) do not match the {len(refs)} lines of {raw_refs} "
                         "(expected one reference line per sample id 0..N-1)")
    missing = [i for i, r in records.items() if not r.hypotheses or r.hypotheses[0].detok is None]
    if missing:
        raise InputError(f"{log}: sample {missing[0]} has no D- line")
    return refs, [records[i].hypotheses[0].detok for i in range(len(refs))]


def prefixed(prefix: str, scores: dict) -> dict:
    """dev + {bleu: x, bleu_signature: s} -> {dev_bleu: x, bleu_signature: s} (signatures are split-independent)."""
    return {(k if k.endswith("_signature") else f"{prefix}_{k}"): v for k, v in scores.items()}


@dataclasses.dataclass
class Config(DataRunConfig):
    task: Literal["st", "nmt", "asr"] = option("st", "asr: WER; st / nmt: BLEU, chrF++, TER")
    generate_run: str = option("", "an st-generate run: its generate-<split>.txt logs are scored", run_ref=True)
    logs: dict[str, str] = option({}, "or explicit logs: metric prefix -> fairseq-generate log path "
                                      "(relative to data_root), e.g. {\"test\": \"generate-tst-COMMON.txt\"}")
    references: dict[str, str] = option({}, "with logs (st, nmt): metric prefix -> the raw reference text of that "
                                            "log, line i = sample id i (relative to data_root); a log's T- lines "
                                            "are rebuilt from token ids, with <unk> for out-of-vocabulary words")
    splits: dict[str, str] = option({"dev": "dev", "test": "test"},
                                    "with generate_run: metric prefix -> split name (MuST-C: test -> tst-COMMON)")
    lang: str = option("de", "language of the references for Moses detokenisation (en for ASR)")

    def __post_init__(self) -> None:
        if bool(self.generate_run) == bool(self.logs):
            raise ValueError("set generate_run or logs (one of them)")
        if self.logs and self.task != "asr" and set(self.references) != set(self.logs):
            raise ValueError("references: give the raw reference file of every log (same metric prefixes as logs)")


def score_inputs(cfg: Config) -> tuple[dict[str, Path], dict[str, Path]]:
    """The logs and raw reference files to score, all checked before anything is written."""
    if cfg.generate_run:
        gen_dir = finished_run(cfg, cfg.generate_run, "generate_run")
        stage = run_config(gen_dir).get("stage")
        made = json.loads((gen_dir / "metrics.json").read_text(encoding="utf-8")) if stage == "st-generate" else {}
        if cfg.task != "asr" and made.get("references") != RAW_REFERENCES:
            raise InputError(f"generate_run: '{cfg.generate_run}' is not an st-generate run whose T- lines hold the "
                             "raw references (references: raw in its metrics.json): rerun st-generate")
        logs = {prefix: gen_dir / f"generate-{split}.txt" for prefix, split in cfg.splits.items()}
        refs: dict[str, Path] = {}
    else:
        logs = {prefix: data_path(cfg.data_root, path) for prefix, path in cfg.logs.items()}
        refs = {prefix: require_file(data_path(cfg.data_root, path), f"references.{prefix}", "raw reference text")
                for prefix, path in cfg.references.items()}
    for prefix, path in logs.items():
        require_file(path, f"logs.{prefix}" if cfg.logs else "generate_run", "fairseq-generate log")
    return logs, refs


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="st-score")
    if (done := run_.metrics_if_done()) is not None:
        return done
    logs, refs = score_inputs(cfg)
    run_.start()
    metrics: dict = {} if cfg.task == "asr" else {"references": RAW_REFERENCES}
    for prefix, path in logs.items():
        metrics.update(prefixed(prefix, score_log(path, cfg.task, cfg.lang, refs.get(prefix))))
    print(f"[st-score] {run_.name}: " + ", ".join(f"{k}={v}" for k, v in metrics.items() if "signature" not in k))
    return run_.finish(metrics)
