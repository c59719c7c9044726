"""Tiny ST inputs in the project's TSV layout: parallel text and an embedded-style speech corpus."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from speechkd.data.manifests import write_tsv
from speechkd.stages import st_prep as prep

SR = 16000


def _wave(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_parallel_text(root: Path) -> Path:
    text = root / "text"
    text.mkdir(parents=True)
    en = ["The cat doesn't sleep.", "A dog \u201cbarks\u201d loudly.", "My friend buys bread."] * 4
    de = ["Die Katze schl\u00e4ft nicht.", "Ein Hund \u201ebellt\u201c laut.", "Mein Freund kauft Brot."] * 4
    for split, n in (("train", 12), ("valid", 3), ("test", 3)):
        (text / f"{split}.en").write_text("".join(s + "\n" for s in en[:n]), encoding="utf-8")
        (text / f"{split}.de").write_text("".join(s + "\n" for s in de[:n]), encoding="utf-8")
    return text


def write_embedded_corpus(root: Path) -> Path:
    """An embedded-layout ST corpus: train has a too-short clip (< 5 frames), a too-long clip (> max_train_frames
    of the test config) and an empty translation; dev has a long clip that must be kept (no length filter)."""
    corpus = root / "st"
    rows = {"train": [("u0", 0.5, "Der Hund schl\u00e4ft.", "The dog \u201csleeps\u201d."),
                      ("u1", 0.03, "Zu kurz.", "Too short."),
                      ("u2", 1.6, "Zu lang.", "Too long."),
                      ("u3", 0.4, "", "No translation."),
                      ("u4", 0.6, "Die Katze l\u00e4uft.", "The cat isn't running.")],
            "dev": [("d0", 1.6, "Ein Hund \u201ebellt\u201c.", "A dog \u201cbarks\u201d.")]}
    for split, items in rows.items():
        out = []
        for i, (utt, seconds, de, en) in enumerate(items):
            rel = f"wav/{split}/{utt}.wav"
            (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(corpus / rel, _wave(seconds, i), SR, subtype="PCM_16")
            out.append({"id": utt, "audio": rel, "n_frames": 0, "tgt_text": de, "speaker": f"spk{i % 2}",
                        "src_text": en})
        write_tsv(corpus / f"{split}.tsv", out, prep.ST_COLUMNS)
    return corpus


