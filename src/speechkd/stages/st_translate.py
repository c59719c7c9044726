"""st-translate: translate new recordings with a trained ST run or an imported fairseq S2T checkpoint directory.

    speechkd st-translate a.wav b.flac --set run=st_mustc_transformer_imitkd_full
    speechkd st-translate talks.tsv --set run=asr_mustc --set format=tsv --set out=transcripts.tsv
    speechkd st-translate list.txt --set checkpoint_dir=s2t_mustc_de --set format=log

Inputs (positional arguments, or `inputs`): audio files (wav, flac; mp3 where the model's st-prep read mp3, or with
allow_mp3), list files (.txt, .lst, .list: one path per line) and TSVs (.tsv) with `id` and `audio` columns;
relative paths in a list or a TSV are resolved against its folder. Each file must exist before the model loads
and is checked (format, rate, length) before the first batch is decoded.
Output, one entry per input in input order, to stdout or `out`: the detokenised translation (text), id / audio /
translation (tsv), or a fairseq-generate log (log: H- the BPE pieces, D- the detokenised text, P- base-2 positional
scores; a cascade's S- the ASR transcript). A task asr run transcribes; a cascade's NMT run (data.source audio)
translates its ASR's transcripts. The decoding settings and the features are the model's own (st/translator.py,
also speechkd.api.load_st). An inference writes no run directory: nothing of an earlier call is moved or kept.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Literal

from ..api import load_st
from ..config import option
from ..data.manifests import read_tsv
from ..errors import InputError
from ..fileio import read_text_lines, write_text_atomic
from ..interop.fairseq_generate import format_generate_log


@dataclasses.dataclass
class Config:
    inputs: list[str] = option([], "audio files, list files (one path per line) and TSVs (id, audio columns); "
                                   "the command's positional arguments set it")
    run: str = option("", "a finished st-train run of runs_dir/profile (task st or asr, or a cascade's NMT run)",
                      run_ref=True)
    checkpoint_dir: str = option("", "or an imported fairseq S2T checkpoint directory (a .pt, config.yaml, the "
                                     "dictionary and sentencepiece / BPE model it names)")
    runs_dir: str = option("runs", "root of all run directories")
    profile: str = option("embedded", "the profile of run")
    out: str = option("", "output file ('' = stdout)")
    format: Literal["text", "tsv", "log"] = option("text", "text: one translation per line; tsv: id, audio, "
                                                           "translation; log: a fairseq-generate log")
    checkpoint: str | None = option(None, "best, last or average_last_N (a checkpoint directory: the .pt file's "
                                          "name); null = as the run's st-eval")
    beam: int | None = option(None, "beam size; null = as the run's st-eval (fairseq's 5 for a checkpoint dir)")
    max_len_a: float | None = option(None, "max length = a·frames + b; null = as the run's st-eval")
    max_len_b: int | None = option(None, "null = as the run's st-eval")
    lenpen: float | None = option(None, "length penalty; null = as the run's st-eval")
    max_tokens: int | None = option(None, "feature frames per batch (bounds memory); null = as the run's st-eval")
    lang: str = option("", "Moses detokenisation language ('' = the run's target language, en for ASR)")
    resample: bool | None = option(None, "accept other sample rates (polyphase resampling to 16 kHz); null = "
                                         "where the model's st-prep resampled (CoVoST)")
    allow_mp3: bool | None = option(None, "accept mp3 files; null = where the model's st-prep read mp3 (CoVoST)")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto = cuda when available")
    progress: bool = option(True, "a progress bar on stderr")

    def __post_init__(self) -> None:
        if bool(self.run) == bool(self.checkpoint_dir):
            raise ValueError("set run or checkpoint_dir (one of them)")


@dataclasses.dataclass
class Input:
    id: str
    audio: str   # as given (a TSV's audio column, a list's line, the argument)
    path: Path   # resolved


LIST_SUFFIXES = (".txt", ".lst", ".list")


def expand_inputs(inputs: list[str]) -> list[Input]:
    """.tsv files -> their (id, audio) rows; list files -> their lines; anything else is an audio file (id: its
    name without the extension). A missing file is an InputError naming the TSV / list line."""
    out = []
    for given in inputs:
        path = Path(given)
        suffix = path.suffix.lower()
        if suffix == ".tsv":
            rows = [(f"{path}:{n}: column audio", row["id"], row["audio"], path.parent / row["audio"])
                    for n, row in enumerate(read_tsv(path, required=("id", "audio")), 2)]
        elif suffix in LIST_SUFFIXES:
            rows = [(f"{path}:{n}", Path(line.strip()).stem, line.strip(), path.parent / line.strip())
                    for n, line in enumerate(read_text_lines(path, "list of audio files"), 1) if line.strip()]
        else:
            rows = [("inputs", path.stem, given, path)]
        for where, id_, audio, resolved in rows:
            if not resolved.is_file():
                raise InputError(f"{where}: audio file {resolved} not found")
            out.append(Input(id_, audio, resolved))
    if not out:
        raise InputError("inputs: no audio given (e.g. `speechkd st-translate a.wav b.flac --set run=NAME`)")
    return out


def render(items: list[Input], hyps: list, fmt: str) -> str:
    if fmt == "text":
        return "".join(h.text + "\n" for h in hyps)
    if fmt == "tsv":
        rows = [("id", "audio", "translation")] + [(i.id, i.audio, h.text) for i, h in zip(items, hyps)]
        return "".join("\t".join(row) + "\n" for row in rows)
    return format_generate_log(h.record(k) for k, h in enumerate(hyps))


def run(cfg: Config) -> dict:
    items = expand_inputs(cfg.inputs)
    translator = load_st(cfg.run, runs_dir=cfg.runs_dir, profile=cfg.profile, checkpoint_dir=cfg.checkpoint_dir,
                         checkpoint=cfg.checkpoint, beam=cfg.beam, max_len_a=cfg.max_len_a, max_len_b=cfg.max_len_b,
                         lenpen=cfg.lenpen, max_tokens=cfg.max_tokens, lang=cfg.lang, resample=cfg.resample,
                         allow_mp3=cfg.allow_mp3, device=cfg.device)
    print(f"[st-translate] {translator.describe()}: {len(items)} input(s)", file=sys.stderr, flush=True)
    hyps = translator.hypotheses([i.path for i in items], progress=cfg.progress)
    text = render(items, hyps, cfg.format)
    if cfg.out:
        write_text_atomic(cfg.out, text)
        print(f"[st-translate] {len(items)} {cfg.format} entries in {cfg.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return {"inputs": len(items), "model": cfg.run or cfg.checkpoint_dir}
