"""Audio I/O through soundfile. Every failure is an InputError naming the file and what was expected.

Accepted formats (the file's real container and subtype from sf.info, never its extension):
- WAV (RIFF, also WAVE_FORMAT_EXTENSIBLE) with PCM_16, PCM_24, PCM_32, FLOAT or DOUBLE samples, and FLAC with
  PCM_16 or PCM_24: lossless, what every corpus of both papers ships or converts to (FSC, SNIPS/SmartLights,
  LibriSpeech flac, MuST-C wav; the authors' reduce_audio_q.sh turns Common Voice into 16-bit wav).
- MP3 (MPEG layer III) only where a caller says `allow_mp3=True`: the corpora that ship mp3 (Common Voice clips
  read by the covost2 reader). Anywhere else an mp3 is a lossy stray and is refused with an ffmpeg hint.
- Refused by name: 8-bit PCM (unsigned or signed: 48 dB of dynamic range, a legacy/telephony export), mu-law /
  A-law and ADPCM (telephony codecs), Ogg Vorbis/Opus and other lossy or exotic containers (AIFF, AU, CAF, W64,
  RF64, NIST, ...): convert them with ffmpeg to 16-bit wav.

Also refused, all problems of one file named in one message: an extension that does not match the content (an mp3
stream named .wav), a WAV whose header promises more samples than the file holds (a truncated copy; soundfile
would silently return what is there), NaN/Inf samples in a float file (with the first bad sample's index),
another sample rate (unless `resample`: polyphase resampling on reading), more than one channel, no samples.
"""
from __future__ import annotations

import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import InputError
from ..fileio import atomic_path

_LOSSLESS = {"WAV": ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
             "WAVEX": ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
             "FLAC": ("PCM_16", "PCM_24")}
_MP3 = {"MP3": ("MPEG_LAYER_III",)}
# extension -> the containers it names (an extension not listed here is not checked against the content)
_EXTENSIONS = {".wav": ("WAV", "WAVEX"), ".wave": ("WAV", "WAVEX"), ".flac": ("FLAC",), ".mp3": ("MP3",),
               ".ogg": ("OGG",), ".oga": ("OGG",), ".opus": ("OGG",), ".aif": ("AIFF",), ".aiff": ("AIFF",),
               ".au": ("AU",), ".snd": ("AU",), ".caf": ("CAF",), ".w64": ("W64",), ".rf64": ("RF64",),
               ".sph": ("NIST",), ".nist": ("NIST",)}
_WHY_NOT = {"PCM_U8": "8-bit audio", "PCM_S8": "8-bit audio", "ULAW": "mu-law telephony codec",
            "ALAW": "A-law telephony codec", "IMA_ADPCM": "lossy ADPCM", "MS_ADPCM": "lossy ADPCM",
            "VORBIS": "lossy", "OPUS": "lossy", "MPEG_LAYER_III": "lossy mp3, accepted only for corpora that "
                                                               "ship mp3 (Common Voice)"}


def accepted_formats(allow_mp3: bool = False) -> str:
    """'WAV PCM_16/PCM_24/..., FLAC PCM_16/PCM_24[, MP3 MPEG_LAYER_III]' for messages."""
    table = {**_LOSSLESS, **(_MP3 if allow_mp3 else {})}
    table.pop("WAVEX")
    return ", ".join(f"{fmt} {'/'.join(subs)}" for fmt, subs in table.items())


def _convert_hint(path: Path, sample_rate: int) -> str:
    return f"`ffmpeg -i {path} -acodec pcm_s16le -ac 1 -ar {sample_rate} {path.with_suffix('')}_fixed.wav`"


def _wav_truncation(path: Path) -> str | None:
    """The problem when a RIFF/WAVE file's data chunk promises more bytes than the file holds, else None.
    (libsndfile quietly shortens the frame count to what is there.) A data size of 0 or 0xFFFFFFFF is a
    streaming writer's "unknown" and is not checked."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        pos, block_align = 12, 0
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, n = struct.unpack(endian + "4sI", f.read(8))
            if chunk_id == b"fmt " and n >= 14:
                block_align = struct.unpack(endian + "H", f.read(14)[12:14])[0]
            elif chunk_id == b"data":
                held = size - pos - 8
                if n in (0, 0xFFFFFFFF) or n <= held:
                    return None
                ba = max(block_align, 1)
                return (f"truncated: the WAV header promises {n // ba} samples ({n} data bytes), the file holds "
                        f"{held // ba} ({held} bytes)")
            pos += 8 + n + (n & 1)
    return None


def check_audio(path: str | Path, sample_rate: int = 16000, resample: bool = False, *, allow_mp3: bool = False,
                resample_option: str | None = "resample"):
    """sf.info of an accepted file, or one InputError naming the file and every problem found: format (content
    vs extension, container/subtype vs what is accepted), truncation, sample rate, channels, emptiness.
    `resample_option`: the config option that turns on resampling, named in the hint (None: the caller has
    none)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes), expected audio ({accepted_formats(allow_mp3)})")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        hint = f" (mp3: convert to wav/flac first, e.g. {_convert_hint(path, sample_rate)})" \
            if path.suffix.lower() == ".mp3" else ""
        raise InputError(f"{path}: cannot read audio: not a recognised audio file ({e}); expected "
                         f"{accepted_formats(allow_mp3)}{hint}") from None
    fmt, sub = info.format, info.subtype
    problems, hints = [], []
    ext = path.suffix.lower()
    if ext in _EXTENSIONS and fmt not in _EXTENSIONS[ext]:
        problems.append(f"content is {fmt} ({sub}) although the name says {ext}")
    accepted = {**_LOSSLESS, **(_MP3 if allow_mp3 else {})}
    if sub not in accepted.get(fmt, ()):
        why = _WHY_NOT.get(sub)
        problems.append(f"{fmt}/{sub}{f' ({why})' if why else ''} is not accepted; accepted: "
                        f"{accepted_formats(allow_mp3)}")
    convert = bool(problems)
    if fmt in ("WAV", "WAVEX") and (truncated := _wav_truncation(path)):
        problems.append(truncated)
        hints.append("copy or export the file again")
    if info.samplerate != sample_rate and not resample:
        convert = True
        problems.append(f"sample rate {info.samplerate} Hz, expected {sample_rate} Hz")
        if resample_option:
            hints.append(f"set `{resample_option}: true` in the config to resample on reading")
    if info.channels != 1:
        problems.append(f"{info.channels} channels, expected mono")
        convert = True
    if info.frames == 0:
        problems.append("empty audio (0 samples)")
    if convert:
        hints.append(f"convert: {_convert_hint(path, sample_rate)}")
    if problems:
        raise InputError(f"{path}: {'; '.join(problems)}" + (f" ({'; or '.join(hints)})" if hints else ""))
    return info


def read_audio(path: str | Path, sample_rate: int = 16000, resample: bool = False, *, allow_mp3: bool = False,
               start: int = 0, frames: int = -1, resample_option: str | None = "resample") -> np.ndarray:
    """Mono float32 samples in [-1, 1], of the file or of its samples [start, start + frames) (in the file's own
    rate; frames -1 = to the end): a partial read, as fairseq's get_waveform, not the whole file. The file is
    first checked as `check_audio` says (multi-channel refused: say which channel you want). Another sample rate
    is refused unless `resample` (then polyphase resampling, scipy's resample_poly: what a corpus that ships
    another rate needs, e.g. Common Voice's 48 kHz mp3 clips). NaN/Inf samples are refused with the first's
    index."""
    path = Path(path)
    info = check_audio(path, sample_rate, resample, allow_mp3=allow_mp3, resample_option=resample_option)
    end = info.frames if frames < 0 else start + frames
    if start < 0 or end > info.frames or end <= start:
        raise InputError(f"{path}: samples [{start}, {end}) requested, the file holds {info.frames}")
    try:
        wave, _ = sf.read(str(path), start=start, frames=end - start, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise InputError(f"{path}: cannot decode {info.format}/{info.subtype} (truncated or corrupt file?): {e}") \
            from None
    if wave.shape[0] < end - start and info.format != "MP3":  # mp3's frame count is an estimate
        raise InputError(f"{path}: truncated: the header promises {info.frames} samples, only "
                         f"{start + wave.shape[0]} could be read")
    bad = np.flatnonzero(~np.isfinite(wave[:, 0]))
    if bad.size:
        first = int(bad[0])
        raise InputError(f"{path}: sample {start + first} is {wave[first, 0]} ({bad.size} non-finite samples in "
                         f"all); expected finite float samples in [-1, 1]")
    wave = wave[:, 0]
    if info.samplerate != sample_rate:  # resample (check_audio refused it otherwise)
        wave = resample_wave(wave, info.samplerate, sample_rate)
    return wave


def resample_wave(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono float samples at `rate` Hz -> float32 at `target` Hz (polyphase, scipy's resample_poly)."""
    from scipy.signal import resample_poly
    g = gcd(rate, target)
    return resample_poly(np.asarray(wave, dtype=np.float64), target // g, rate // g).astype(np.float32)


def input_wave(wave: np.ndarray, sample_rate: int, target: int = 16000, name: str = "wave") -> np.ndarray:
    """An in-memory wave handed to an inference API, checked as read_audio checks a file (mono, samples, finite)
    and resampled from `sample_rate` to `target` Hz: float32 in [-1, 1]."""
    wave = np.asarray(wave)
    if wave.ndim != 1 or wave.size == 0 or not np.issubdtype(wave.dtype, np.floating):
        raise InputError(f"{name}: expected a non-empty 1-D float array of mono samples in [-1, 1], got "
                         f"{wave.dtype} of shape {wave.shape}")
    bad = np.flatnonzero(~np.isfinite(wave))
    if bad.size:
        raise InputError(f"{name}: sample {int(bad[0])} is {wave[bad[0]]} ({bad.size} non-finite samples in all)")
    if sample_rate < 1:
        raise InputError(f"{name}: sample_rate {sample_rate} Hz, expected a positive rate")
    return wave.astype(np.float32) if sample_rate == target else resample_wave(wave, sample_rate, target)


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = 16000) -> None:
    """16-bit PCM WAV, written atomically. `wave` is float in [-1, 1] (clipped)."""
    pcm = np.clip(np.asarray(wave, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(pcm * 32767.0).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")
