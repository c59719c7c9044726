"""slu-infer: classify wav files with a saved slu-finetune run.

Like the authors' inference.py (wav -> vq-wav2vec units -> `<s>` + units -> SpeechModel -> arg-max intent), for
any number of files. Prints one "path<TAB>intent" line per file, the intent as its intent_dict line (e.g.
"change language German none"): the authors split the intent with split(' ') into exactly three fields, which
breaks on FSC's two-word action "change language"; we print the line whole. The predictions also go to
predictions.tsv (path, intent, probability) in this command's run directory.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from ..config import DataRunConfig, option
from ..data.audio import read_audio
from ..errors import InputError
from ..fileio import write_text_atomic
from ..runs import Run, data_path, finished_run
from ..slu.bundle import load_bundle
from ..slu.corpus import encode_units

SAMPLE_RATE = 16000


@dataclasses.dataclass
class Config(DataRunConfig):
    name: str = option("slu-infer", "run name of this command (predictions.tsv goes there)")
    model_run: str = option("slu_fsc_full_da", "the slu-finetune run whose saved model classifies", run_ref=True)
    wavs: list[str] = option([], "wav/flac files (16 kHz mono; relative to data_root)")
    wav_list: str = option("", "a text file with one wav path per line (relative to data_root)")
    resample: bool = option(False, "resample audio at another sample rate to 16 kHz on reading (polyphase, "
                                   "scipy resample_poly); false = such files are refused by name")
    device: str = option("cpu", "torch device", hashed=False)


def wav_paths(cfg: Config) -> list[Path]:
    paths = [data_path(cfg.data_root, w) for w in cfg.wavs]
    if cfg.wav_list:
        listing = data_path(cfg.data_root, cfg.wav_list)
        if not listing.is_file():
            raise InputError(f"wav_list: {listing} not found")
        paths += [data_path(cfg.data_root, line.strip()) for line in listing.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    if not paths:
        raise InputError("wavs / wav_list: no wav files given (e.g. --set 'wavs=[\"a.wav\"]')")
    return paths


def check_length(path: Path, wave, source, max_positions: int) -> None:
    """Refuse an utterance whose `<s>` + units exceed VQ-BERT's learned positions, with its duration and the
    limit, or that is too short for a single unit, before any model work."""
    positions = 1 + source.num_units(len(wave))
    if positions == 1:
        raise InputError(f"{path}: {len(wave) / SAMPLE_RATE:.1f} s of audio is too short for one unit "
                         f"({len(wave)} samples)")
    if positions > max_positions:
        seconds = len(wave) / SAMPLE_RATE
        limit = seconds * (max_positions - 1) / (positions - 1)
        raise InputError(f"{path}: {seconds:.1f} s of audio is {positions - 1} units (+ <s>), the model takes at "
                         f"most {max_positions} positions (about {limit:.1f} s); split the recording into "
                         "shorter utterances")


@torch.no_grad()
def classify(bundle, waves: list) -> list[tuple[int, float]]:
    """(class index, probability) per wave, one utterance at a time (no padding effects)."""
    device = next(bundle.model.parameters()).device
    out = []
    for wave in waves:
        units = encode_units(bundle.dictionary, bundle.units.tokens(wave), append_eos=False)
        logits = bundle.model(torch.tensor([len(units)], device=device), units[None].to(device))[0]
        probs = torch.softmax(logits.float(), dim=-1)
        out.append((int(probs.argmax()), float(probs.max())))
    return out


def run(cfg: Config) -> dict:
    paths = wav_paths(cfg)
    model_dir = finished_run(cfg, cfg.model_run, "model_run", stage="slu-finetune")
    bundle = load_bundle(model_dir, cfg.device)
    waves = [read_audio(p, SAMPLE_RATE, resample=cfg.resample) for p in paths]  # all checked before any output
    for path, wave in zip(paths, waves):
        check_length(path, wave, bundle.units, bundle.model.vq_bert.max_positions)
    run_ = Run(cfg, stage="slu-infer").start()
    results = classify(bundle, waves)
    lines = []
    for path, (k, p) in zip(paths, results):
        print(f"{path}\t{bundle.intents[k]}")
        lines.append(f"{path}\t{bundle.intents[k]}\t{p:.4f}\n")
    write_text_atomic(run_.dir / "predictions.tsv", "path\tintent\tprobability\n" + "".join(lines))
    sys.stdout.flush()
    return run_.finish({"files": len(paths), "model_run": cfg.model_run})
