"""speechkd's Python API: load a trained model once, then translate, classify or classify text as often as needed.

    from speechkd import api

    st = api.load_st("st_mustc_transformer_imitkd_full", runs_dir="runs", profile="embedded")
    st.translate(["a.wav", "b.flac"])          # detokenised German, one string per input, in input order
    st.translate([wave], sample_rate=16000)    # or 1-D float numpy waves (resampled when another rate)
    api.load_st(checkpoint_dir="s2t_mustc_de")  # an imported fairseq S2T checkpoint directory

    slu = api.load_slu("slu_fsc_full_ampt")
    slu.classify(["turn_on.wav"])              # [("activate lights kitchen", 0.93)]: intent_dict line, probability
    teacher = api.load_text_teacher("slu_text_fsc")
    teacher.classify_text(["turn on the kitchen lights"])

A run is named as in the configs and found at <runs_dir>/<profile>/<run> (it must be finished: DONE). Bad input
(an unfinished run, an unreadable or too long recording, ...) raises speechkd.errors.InputError with a message
naming the file or option. `speechkd st-translate` and `speechkd slu-infer` are the same calls on the command line.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .errors import InputError
from .runs import finished_run
from .slu.classify import SpeechIntentClassifier, TextIntentClassifier
from .st.translator import Options, Translator, load_checkpoint_dir, load_run

__all__ = ["RunLocation", "load_st", "load_slu", "load_text_teacher", "Translator", "SpeechIntentClassifier",
           "TextIntentClassifier"]


@dataclasses.dataclass
class RunLocation:
    """Where runs are: <runs_dir>/<profile>/<run name>."""
    runs_dir: str = "runs"
    profile: str = "embedded"


def load_st(run: str = "", *, runs_dir: str | Path = "runs", profile: str = "embedded", checkpoint_dir: str | Path = "",
            checkpoint: str | None = None, beam: int | None = None, max_len_a: float | None = None,
            max_len_b: int | None = None, lenpen: float | None = None, max_tokens: int | None = None,
            lang: str = "", resample: bool | None = None, allow_mp3: bool | None = None,
            device: str = "auto") -> Translator:
    """A translator from a finished st-train run (task st; asr: transcripts; a cascade's NMT run) or from an
    imported fairseq S2T checkpoint directory (checkpoint_dir). Search settings left at None are the run's: those
    of the st-eval run that scored it (else st-generate's defaults); `checkpoint` is best, last or
    average_last_N for a run, the .pt file's name in a checkpoint directory. `lang`: the language the output is
    Moses-detokenised in (default: the run's target language). `resample` / `allow_mp3`: accept other sample rates
    / mp3 (default: where the model's st-prep did, i.e. CoVoST)."""
    options = Options(checkpoint, beam, max_len_a, max_len_b, lenpen, max_tokens, lang, resample, allow_mp3, device)
    if bool(run) == bool(checkpoint_dir):
        raise InputError("load_st: give a run name or a checkpoint_dir (one of them)")
    if checkpoint_dir:
        return load_checkpoint_dir(checkpoint_dir, options)
    return load_run(RunLocation(str(runs_dir), profile), run, options)


def load_slu(run: str, *, runs_dir: str | Path = "runs", profile: str = "embedded", resample: bool = False,
             device: str = "cpu") -> SpeechIntentClassifier:
    """The speech intent classifier of a finished slu-finetune run; `resample`: accept other sample rates."""
    directory = finished_run(RunLocation(str(runs_dir), profile), run, "run", stage="slu-finetune")
    return SpeechIntentClassifier.load(directory, device, resample)


def load_text_teacher(run: str = "", *, runs_dir: str | Path = "runs", profile: str = "embedded",
                      checkpoint_dir: str | Path = "", device: str = "cpu") -> TextIntentClassifier:
    """The text teacher (RoBERTa <s> -> intent) of a finished slu-text-finetune run, or its Hugging Face export
    (checkpoint_dir: what `speechkd export --set format=hf` writes for that run)."""
    if bool(run) == bool(checkpoint_dir):
        raise InputError("load_text_teacher: give a run name or a checkpoint_dir (one of them)")
    if checkpoint_dir:
        directory = Path(checkpoint_dir)
        if not directory.is_dir():
            raise InputError(f"checkpoint_dir: {directory} is not a directory")
        return TextIntentClassifier.load_hf(directory, device)
    directory = finished_run(RunLocation(str(runs_dir), profile), run, "run", stage="slu-text-finetune")
    return TextIntentClassifier.load(directory, device)
