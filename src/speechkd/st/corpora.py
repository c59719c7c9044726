"""Speech-translation corpora as released, read into one list of utterances per split (no features yet).

- embedded: the project's generated corpora (data/embedded/st_{mustc,covost}/{split}.tsv: id, audio (wav path
  relative to the corpus dir), n_frames, tgt_text, speaker, src_text).
- mustc: the MuST-C release (<root>/en-de/data/<split>/{wav/<talk>.wav, txt/<split>.yaml, txt/<split>.{en,de}}),
  segmented as fairseq's prep_mustc_data.py `MUSTC`: segments grouped by talk wav (itertools.groupby, i.e.
  consecutive yaml entries), sorted by their offset AS A STRING (the yaml is read with BaseLoader, so fairseq sorts
  "10.5" before "9.2"; kept for identical ids), id = f"{talk stem}_{i}", samples [int(offset·sr),
  + int(duration·sr)).
- covost2: Common Voice (v4) English with the CoVoST 2 table (<root>/covost_v2.en_de.tsv, <root>/validated.tsv,
  <root>/clips/*.mp3), as fairseq's prep_covost_data.py `CoVoST`: inner join of validated.tsv (path, sentence,
  client_id) and the CoVoST table (path, translation, split) on path; train = split "train" or "train_covost";
  id = path without ".mp3". Audio: clips/<id>.wav when it exists (the authors converted every mp3 with
  reduce_audio_q.sh), else the mp3 itself if soundfile decodes it at 16 kHz.
"""
from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from ..data.audio import read_audio
from ..data.manifests import read_tsv
from ..errors import InputError
from ..fileio import read_text, read_text_lines

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Utterance:
    id: str
    split: str
    speaker: str
    src_text: str        # raw source transcript (English)
    tgt_text: str        # raw translation (German)
    audio: str           # wav/flac/mp3 path
    offset: int = 0      # first sample of the segment
    num_samples: int = -1  # -1: to the end of the file
    resample: bool = False  # the corpus ships another rate (Common Voice: 48 kHz): resample to 16 kHz
    allow_mp3: bool = False  # the corpus ships mp3 (Common Voice): decode it; elsewhere mp3 is refused


def load_audio(utt: Utterance) -> np.ndarray:
    """The utterance's mono float32 samples at 16 kHz, checked as data/audio.py says (accepted formats, truncation,
    NaN/Inf, rate, channels). A segment (MuST-C) is read from its talk file with a partial read (soundfile
    start/frames, as fairseq's get_waveform), never the whole talk. mp3 is accepted where the corpus reader says
    its corpus ships it (allow_mp3: Common Voice, for covost2)."""
    path = Path(utt.audio)
    segment = utt.num_samples >= 0 or utt.offset > 0
    try:
        return read_audio(path, SAMPLE_RATE, resample=utt.resample, allow_mp3=utt.allow_mp3, start=utt.offset,
                          frames=utt.num_samples, resample_option=None)
    except InputError as e:
        if path.suffix.lower() == ".mp3":
            raise InputError(f"{e}\nconvert the CoVoST clips as the authors' reduce_audio_q.sh does: "
                             f"`ffmpeg -i {path} -acodec pcm_s16le -ac 1 -ar 16000 {path.with_suffix('.wav')}` "
                             "(st-prep then reads the .wav next to the .mp3)") from None
        if segment:
            raise InputError(f"{e} (segment {utt.id}: samples [{utt.offset}, "
                             f"{utt.offset + utt.num_samples if utt.num_samples >= 0 else 'end'}))") from None
        raise


# -------------------------------------------------------------------------------------------------- embedded

def embedded_st(corpus_dir: Path, splits: Sequence[str]) -> dict[str, list[Utterance]]:
    out = {}
    for split in splits:
        tsv = corpus_dir / f"{split}.tsv"
        rows = read_tsv(tsv, required=("id", "audio", "tgt_text", "speaker", "src_text"))
        for n, r in enumerate(rows, 2):
            if not (corpus_dir / r["audio"]).is_file():
                raise InputError(f"{tsv}:{n}: column audio: audio file {corpus_dir / r['audio']} not found")
        out[split] = [Utterance(r["id"], split, r["speaker"], r["src_text"], r["tgt_text"],
                                str(corpus_dir / r["audio"])) for r in rows]
    return out


# ----------------------------------------------------------------------------------------------------- MuST-C

_YAML_ITEM = re.compile(r"^\s*-\s*\{(.*)\}\s*$")


def parse_mustc_yaml(path: Path) -> list[dict[str, str]]:
    """MuST-C's segment list, one flow mapping per line: `- {duration: 3.5, offset: 16.73, rW: 9, uW: 0,
    speaker_id: spk.767, wav: ted_767.wav}`. Values stay strings (fairseq reads it with yaml.BaseLoader)."""
    if not path.is_file():
        raise InputError(f"{path}: MuST-C segment file not found")
    segments = []
    for lineno, line in enumerate(read_text_lines(path, "MuST-C segment file"), 1):
        if not line.strip():
            continue
        m = _YAML_ITEM.match(line)
        if m is None:
            raise InputError(f"{path}:{lineno}: expected '- {{duration: .., offset: .., speaker_id: .., wav: ..}}'")
        item = {}
        for field in m.group(1).split(","):
            key, sep, value = field.partition(":")
            if not sep:
                raise InputError(f"{path}:{lineno}: malformed field {field.strip()!r}")
            item[key.strip()] = value.strip().strip("'\"")
        missing = [k for k in ("duration", "offset", "speaker_id", "wav") if k not in item]
        if missing:
            raise InputError(f"{path}:{lineno}: missing {', '.join(missing)}")
        segments.append(item)
    return segments


def mustc(root: Path, splits: Sequence[str], tgt_lang: str = "de") -> dict[str, list[Utterance]]:
    out = {}
    base = root / f"en-{tgt_lang}" / "data"
    for split in splits:
        txt, wav_root = base / split / "txt", base / split / "wav"
        segments = parse_mustc_yaml(txt / f"{split}.yaml")
        for lang in ("en", tgt_lang):
            path = txt / f"{split}.{lang}"
            if not path.is_file():
                raise InputError(f"{path}: MuST-C text file not found")
            with io.StringIO(read_text(path, "MuST-C text file"), newline=None) as f:  # universal newlines, as open()
                lines = [r.strip() for r in f]  # fairseq: [r.strip() for r in f]
            if len(lines) != len(segments):
                raise InputError(f"{path}: {len(lines)} lines for {len(segments)} segments in {split}.yaml")
            for seg, text in zip(segments, lines):
                seg[lang] = text
        utts = []
        for wav_name, group in itertools.groupby(segments, key=lambda s: s["wav"]):
            wav_path = wav_root / wav_name
            if not wav_path.is_file():
                raise InputError(f"{wav_path}: MuST-C talk audio not found")
            sr = sf.info(str(wav_path)).samplerate
            for i, seg in enumerate(sorted(group, key=lambda s: s["offset"])):  # string order, as fairseq
                try:
                    offset, n = int(float(seg["offset"]) * sr), int(float(seg["duration"]) * sr)
                except ValueError:
                    raise InputError(f"{txt / (split + '.yaml')}: non-numeric offset/duration in {seg}") from None
                utts.append(Utterance(f"{wav_path.stem}_{i}", split, seg["speaker_id"], seg["en"], seg[tgt_lang],
                                      str(wav_path), offset, n))
        out[split] = utts
    return out


# ---------------------------------------------------------------------------------------------------- CoVoST 2

def _read_plain_tsv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Common Voice / CoVoST tables: tab-separated with a header; pandas reads them with QUOTE_NONE."""
    if not path.is_file():
        raise InputError(f"{path}: CoVoST/Common Voice table not found")
    lines = read_text_lines(path, "CoVoST/Common Voice table", sep="\t", header=True)
    if not lines:
        raise InputError(f"{path}: empty table (expected a header line: {', '.join(required)}, ...)")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}:1: missing column(s) {', '.join(missing)}")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < len(header):
            fields += [""] * (len(header) - len(fields))
        rows.append(dict(zip(header, fields)))
    return rows


def covost2(root: Path, splits: Sequence[str], tgt_lang: str = "de") -> dict[str, list[Utterance]]:
    covost = _read_plain_tsv(root / f"covost_v2.en_{tgt_lang}.tsv", ("path", "translation", "split"))
    validated = {r["path"]: r for r in _read_plain_tsv(root / "validated.tsv", ("path", "sentence", "client_id"))}
    out = {}
    for split in splits:
        wanted = {split, f"{split}_covost"} if split == "train" else {split}
        utts = []
        for row in covost:  # file order (fairseq: the merged frame's index order)
            if row["split"] not in wanted or row["path"] not in validated:
                continue
            cv = validated[row["path"]]
            clip = root / "clips" / row["path"]
            wav = clip.with_suffix(".wav")
            # Common Voice ships 48 kHz mp3: resampled to 16 kHz on reading, as the authors' reduce_audio_q.sh
            # does with ffmpeg beforehand (a converted .wav next to the clip is read instead when present)
            utts.append(Utterance(row["path"].replace(".mp3", ""), split, cv["client_id"], cv["sentence"],
                                  row["translation"], str(wav if wav.is_file() else clip), resample=True,
                                  allow_mp3=True))
        out[split] = utts
    return out


READERS = {"embedded": embedded_st, "mustc": mustc, "covost2": covost2}
DEFAULT_SPLITS = {"embedded": ["train", "dev", "test"], "mustc": ["train", "dev", "tst-COMMON"],
                  "covost2": ["train", "dev", "test"]}
