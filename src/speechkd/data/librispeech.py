"""LibriSpeech as released (openslr.org/12): <root>/<part>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt, one
`<utterance id> <TRANSCRIPT>` a line, next to <utterance id>.flac."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..fileio import read_text_lines


def read_librispeech(root: Path, parts: Sequence[str]) -> list[tuple[str, str, str]]:
    """(audio path, utterance id, transcript) of every utterance of `parts` (e.g. train-clean-100), in file order."""
    rows = []
    for part in parts:
        part_dir = root / part
        if not part_dir.is_dir():
            raise InputError(f"{part_dir}: LibriSpeech part not found (unpack {part}.tar.gz under {root})")
        for trans in sorted(part_dir.glob("*/*/*.trans.txt")):
            for n, line in enumerate(read_text_lines(trans, "LibriSpeech transcript file", sep=" ",
                                                     columns=("utterance id", "transcript")), 1):
                if not line.strip():
                    continue
                utt, _, text = line.partition(" ")
                audio = trans.parent / f"{utt}.flac"
                if not text.strip():
                    raise InputError(f"{trans}:{n}: expected '<utterance id> <transcript>', got {line!r}")
                if not audio.is_file():
                    raise InputError(f"{trans}:{n}: audio {audio} not found")
                rows.append((str(audio), utt, text.strip()))
        if not rows:
            raise InputError(f"{part_dir}: no <speaker>/<chapter>/*.trans.txt files")
    return rows
