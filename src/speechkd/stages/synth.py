"""Generate the embedded corpora: pip-only TTS (espeak-ng through ctypes), grammars, simulated far field.

Layout under output_dir (default data/embedded):
  fsc/                    FSC-like commands, 31 intents: {train,valid,test}.csv, intent_dict, wavs/
  smartlights/close|far/  Snips SmartLights-like, close field and simulated far field (same utterances)
  snips/                  SNIPS-NLU-like smart-speaker commands, 7 intents (the SNIPS column of Table 3)
  read/                   read sentences (LibriSpeech stand-in): {train,dev,test}.tsv + text_only.txt
  st_mustc/, st_covost/   English speech -> German text (talk style / read style), S2T TSVs
  nmt_text/               large text-only en-de sample for the NMT expert
Every corpus directory ends with a DONE file holding the hash of its config section (+ seed and the
generator version), written last: a rerun skips finished corpora and regenerates an interrupted or
changed one from scratch. Corpus files are byte-identical across runs and worker counts; timings go
only to the run's metrics.json (runs/<profile>/synth).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import RunConfig, config_hash, option
from ..fileio import write_json_atomic
from ..runs import Run
from ..synth.fsc import FscSpec, build_fsc
from ..synth.read_speech import ReadSpec, build_read
from ..synth.smartlights import SmartLightsSpec, build_smartlights
from ..synth.snips import SnipsSpec, build_snips
from ..synth.st_corpus import StCorpusSpec, TextParallelSpec, build_st_corpus, build_text_parallel

# bump when a generator changes its output for the same config, so old corpora are regenerated
GENERATOR_VERSION = 3

ALL_CORPORA = ("fsc", "smartlights", "snips", "read", "st_mustc", "st_covost", "nmt_text")


@dataclass
class Config(RunConfig):
    output_dir: str = option("data/embedded", "root directory of the generated corpora")
    workers: int = option(2, "TTS worker processes (output is identical for any value)", hashed=False)
    corpora: list[str] = option(list(ALL_CORPORA), "which corpora to generate (a subset of the default)")
    fsc: FscSpec = option(FscSpec, "FSC-like command corpus (31 intents)")
    smartlights: SmartLightsSpec = option(SmartLightsSpec, "smart-lights corpus, close + far field")
    snips: SnipsSpec = option(SnipsSpec, "SNIPS-NLU-like smart-speaker command corpus (7 intents)")
    read: ReadSpec = option(ReadSpec, "read speech with transcripts + text-only sample")
    st_mustc: StCorpusSpec = option(StCorpusSpec(style="talk", n_train=1500, n_dev=250, n_test=250, seed=2),
                                    "en->de speech translation, talk style (MuST-C stand-in)")
    st_covost: StCorpusSpec = option(StCorpusSpec(style="read"),
                                     "en->de speech translation, read style (CoVoST2 stand-in)")
    nmt_text: TextParallelSpec = option(TextParallelSpec, "en-de text for the NMT expert (WMT stand-in)")

    def __post_init__(self) -> None:
        unknown = [c for c in self.corpora if c not in ALL_CORPORA]
        if unknown:
            raise ValueError(f"corpora: unknown {unknown[0]!r} (expected some of {', '.join(ALL_CORPORA)})")


def corpus_hash(cfg: Config, name: str, *depends: str) -> str:
    """Hash of what a corpus's bytes depend on: its section, the seed, the generator version and the
    sections of the corpora it is derived from."""
    parts = {n: config_hash(getattr(cfg, n)) for n in (name, *depends)}
    blob = json.dumps({"sections": parts, "seed": cfg.seed, "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_done(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "DONE").read_text())
    except (OSError, ValueError):
        return None


def _build_one(name: str, directory: Path, digest: str, build: Callable[[], dict]) -> tuple[dict, float, bool]:
    """(stats, seconds, skipped)."""
    done = read_done(directory)
    if done is not None and done.get("hash") == digest:
        return done.get("stats", {}), 0.0, True
    shutil.rmtree(directory, ignore_errors=True)  # partial or stale: regenerate from scratch
    directory.mkdir(parents=True)
    start = time.perf_counter()
    stats = build()
    seconds = time.perf_counter() - start
    write_json_atomic(directory / "DONE", {"hash": digest, "stats": stats})
    return stats, seconds, False


def _plan(cfg: Config, out: Path) -> list[tuple[str, Path, str, Callable[[], dict]]]:
    w, seed = cfg.workers, cfg.seed
    plan = [
        ("fsc", out / "fsc", corpus_hash(cfg, "fsc"), lambda: build_fsc(cfg.fsc, out / "fsc", seed, w)),
        ("smartlights", out / "smartlights", corpus_hash(cfg, "smartlights"),
         lambda: build_smartlights(cfg.smartlights, out / "smartlights", seed, w)),
        ("snips", out / "snips", corpus_hash(cfg, "snips"), lambda: build_snips(cfg.snips, out / "snips", seed, w)),
        ("read", out / "read", corpus_hash(cfg, "read"), lambda: build_read(cfg.read, out / "read", seed, w)),
    ]
    st_dirs = [out / "st_mustc", out / "st_covost"]
    plan += [
        ("st_mustc", st_dirs[0], corpus_hash(cfg, "st_mustc"), lambda: build_st_corpus(cfg.st_mustc, st_dirs[0], w)),
        ("st_covost", st_dirs[1], corpus_hash(cfg, "st_covost"),
         lambda: build_st_corpus(cfg.st_covost, st_dirs[1], w)),
        ("nmt_text", out / "nmt_text", corpus_hash(cfg, "nmt_text", "st_mustc", "st_covost"),
         lambda: build_text_parallel(cfg.nmt_text, out / "nmt_text", st_dirs)),
    ]
    return [step for step in plan if step[0] in cfg.corpora]


def _flat(name: str, stats: dict) -> dict:
    """Nested builder stats -> flat metrics keys: {"splits": {"train": {"hours": 1}}} -> name_splits_train_hours."""
    out = {}
    for key, value in stats.items():
        key = key if key.startswith(name + "_") else f"{name}_{key}"
        if isinstance(value, dict):
            out.update(_flat(key, value))
        elif isinstance(value, (int, float, str, bool)):
            out[key] = value
    return out


def run(cfg: Config) -> dict:
    out = Path(cfg.output_dir)
    run_ = Run(cfg, stage="synth")
    plan = _plan(cfg, out)
    if run_.is_done() and all((read_done(d) or {}).get("hash") == h for _, d, h, _ in plan):
        print(f"[synth] up to date: {out}")
        return run_.metrics()
    run_.start()
    metrics: dict = {"output_dir": str(out)}
    total = 0.0
    for name, directory, digest, build in plan:
        stats, seconds, skipped = _build_one(name, directory, digest, build)
        total += seconds
        metrics.update(_flat(name, stats))
        metrics[f"{name}_seconds"] = round(seconds, 2)
        metrics[f"{name}_skipped"] = skipped
        counts = ", ".join(f"{k.removeprefix(name + '_')}={v}" for k, v in _flat(name, stats).items()
                           if any(w in k for w in ("utt", "hours", "lines", "speakers", "pairs")))
        print(f"[synth] {name}: {'skipped (DONE)' if skipped else f'{seconds:.1f} s'}; {counts}", flush=True)
    metrics["seconds"] = round(total, 2)
    return run_.finish(metrics)
