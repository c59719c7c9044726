"""st-eval: st-generate then st-score in one run — what the table rows read (metrics dev_bleu, test_bleu, ...).

For every (metric prefix -> split) in `splits` (default dev -> dev, test -> test; MuST-C's test is tst-COMMON):
decode with the configured checkpoint and beam (generate.py), write generate-<split>.txt and hyps/<split>.txt, and
score it (score.py): <prefix>_bleu, <prefix>_chrf, <prefix>_ter with bleu/chrf/ter_signature for translation
models -- the Moses-detokenised hypotheses against the corpus's raw reference text (references: raw), never the
references rebuilt from the target dictionary -- and <prefix>_wer for ASR. An NMT model can be evaluated on the
text of a speech corpus (data_run = that corpus's prep run: text/<split>.bpe.*), which is the expert's BLEU on
CoVoST / MuST-C text.
"""
from __future__ import annotations

import dataclasses
import time

from ..config import RunConfig, option
from .st_generate import GenerationConfig, generate_split, open_decoding_run, reference_kind
from .st_score import prefixed, score_asr, score_translation


@dataclasses.dataclass
class Config(RunConfig):
    model_run: str = option("", "the st-train run to evaluate", run_ref=True)
    data_run: str = option("", "the st-prep run whose splits are decoded (default: the model's prep run)", run_ref=True)
    splits: dict[str, str] = option({"dev": "dev", "test": "test"}, "metric prefix -> split name")
    generation: GenerationConfig = option(GenerationConfig, "search and checkpoint")
    lang: str = option("", "reference language for detokenisation (default: en for ASR, the target language "
                           "otherwise)")


def run(cfg: Config) -> dict:
    opened = open_decoding_run(cfg, "st-eval")
    if isinstance(opened, dict):
        return opened
    run_, model, data_dir, device = opened.run, opened.model, opened.data_dir, opened.device
    lang = cfg.lang or ("en" if model.task == "asr" else model.config["data"].get("tgt_lang", "de"))
    metrics: dict = {"model_run": cfg.model_run, "task": model.task, "checkpoint": model.checkpoint,
                     "beam": cfg.generation.beam, **reference_kind(model)}
    start = time.perf_counter()
    for prefix, split in cfg.splits.items():
        refs, hyps, seconds = generate_split(model, data_dir, split, cfg.generation, run_.dir, device, cfg)
        scores = score_asr(refs, hyps, lang) if model.task == "asr" else score_translation(refs, hyps, lang)
        metrics.update(prefixed(prefix, scores))
        metrics[f"{prefix}_decode_seconds"] = round(seconds, 2)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    shown = ", ".join(f"{k}={v}" for k, v in metrics.items() if k.endswith(("_bleu", "_wer", "_chrf")))
    print(f"[st-eval] {run_.name}: {shown}")
    return run_.finish(metrics)
