"""slu-infer: classify wav files with a saved slu-finetune run.

    speechkd slu-infer a.wav b.wav --set model_run=slu_fsc_full_ampt [--set out=predictions.tsv]

Like the authors' inference.py (wav -> vq-wav2vec units -> `<s>` + units -> SpeechModel -> arg-max intent), for
any number of files (slu/classify.py, also speechkd.api.load_slu). Prints one "path<TAB>intent" line per file, the
intent as its intent_dict line (e.g. "change language German none"); with `out`, also writes that file as a TSV
(path, intent, probability). An inference writes no run directory: nothing of an earlier call is moved or kept
(`speechkd pipeline` gives it out=<runs_dir>/<profile>/<config name>.tsv).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ..config import option
from ..errors import InputError
from ..fileio import read_text_lines, write_text_atomic
from ..runs import data_path, finished_run
from ..slu.classify import SpeechIntentClassifier


@dataclasses.dataclass
class Config:
    model_run: str = option("slu_fsc_full_da", "the slu-finetune run whose saved model classifies", run_ref=True)
    profile: str = option("embedded", "the profile of model_run (runs_dir/profile/model_run)")
    runs_dir: str = option("runs", "root of all run directories")
    data_root: str = option("", "directory that relative wav paths are resolved against ('' = the working "
                                "directory)")
    wavs: list[str] = option([], "wav/flac files (16 kHz mono; relative to data_root); positional arguments of "
                                 "the command set it")
    wav_list: str = option("", "a text file with one wav path per line (relative to data_root)")
    out: str = option("", "also write the predictions to this TSV file (path, intent, probability); '' = print "
                          "only")
    resample: bool = option(False, "resample audio at another sample rate to 16 kHz on reading (polyphase, "
                                   "scipy resample_poly); false = such files are refused by name")
    device: str = option("cpu", "torch device")


def wav_paths(cfg: Config) -> list[Path]:
    paths = [data_path(cfg.data_root, w) for w in cfg.wavs]
    if cfg.wav_list:
        listing = data_path(cfg.data_root, cfg.wav_list)
        if not listing.is_file():
            raise InputError(f"wav_list: {listing} not found")
        paths += [data_path(cfg.data_root, line.strip()) for line in read_text_lines(listing, "wav list")
                  if line.strip()]
    if not paths:
        raise InputError("wavs / wav_list: no wav files given (e.g. `speechkd slu-infer a.wav b.wav`)")
    return paths


def run(cfg: Config) -> dict:
    paths = wav_paths(cfg)
    model_dir = finished_run(cfg, cfg.model_run, "model_run", stage="slu-finetune")
    classifier = SpeechIntentClassifier.load(model_dir, cfg.device, cfg.resample)
    waves = classifier.waves(paths)  # all read and checked before any output
    results = classifier.classify_waves(waves)
    lines = []
    for path, (k, p) in zip(paths, results):
        print(f"{path}\t{classifier.intents[k]}")
        lines.append(f"{path}\t{classifier.intents[k]}\t{p:.4f}\n")
    sys.stdout.flush()
    if cfg.out:
        write_text_atomic(cfg.out, "path\tintent\tprobability\n" + "".join(lines))
        print(f"[slu-infer] {len(paths)} predictions in {cfg.out}", file=sys.stderr)
    return {"files": len(paths), "model_run": cfg.model_run}
