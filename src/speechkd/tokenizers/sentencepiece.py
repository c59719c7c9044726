"""SentencePiece vocabularies the way fairseq's speech-to-text recipes build them
(examples/speech_to_text/data_utils.py `gen_vocab`): special ids fixed to fairseq's order
(<s>=0, <pad>=1, </s>=2, <unk>=3), character coverage 1.0, and a fairseq `dict.txt` written next to the
model (`<prefix>.txt`, every piece with count 1, in SentencePiece id order), so SentencePiece ids and
fairseq Dictionary ids coincide. Text is encoded to space-joined pieces and decoded as fairseq's
SentencepieceBPE encoder does (fairseq/data/encoders/sentencepiece_bpe.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import sentencepiece as spm
import torch

from ..errors import InputError
from .dictionary import BOS, EOS, PAD, UNK, Dictionary

__all__ = ["MODEL_TYPES", "SentencePieceTokenizer", "fairseq_dictionary", "train_sentencepiece"]

MODEL_TYPES = ("unigram", "bpe", "char", "word")
WORD_BOUNDARY = "\u2581"


def train_sentencepiece(corpus: Iterable[str] | str | Path, model_prefix: str | Path, vocab_size: int,
                        model_type: str = "unigram", character_coverage: float = 1.0,
                        special_symbols: Iterable[str] = (), num_threads: int = 1) -> "SentencePieceTokenizer":
    """Trains `<prefix>.model`/`.vocab` and writes the fairseq dictionary `<prefix>.txt`.

    `corpus` is a text file (one sentence per line) or an iterable of sentences. `num_threads` defaults to 1
    (fairseq uses every core) so that training is reproducible and leaves the other cores alone.
    """
    if model_type not in MODEL_TYPES:
        raise InputError(f"sentencepiece model_type {model_type!r}: expected one of {', '.join(MODEL_TYPES)}")
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(model_prefix=str(prefix), model_type=model_type, vocab_size=vocab_size,
                  character_coverage=character_coverage, num_threads=num_threads,
                  bos_id=0, pad_id=1, eos_id=2, unk_id=3, minloglevel=2)
    specials = list(special_symbols)
    if specials:
        kwargs["user_defined_symbols"] = ",".join(specials)
    if isinstance(corpus, (str, Path)):
        if not Path(corpus).is_file():
            raise InputError(f"{corpus}: sentencepiece training corpus not found")
        kwargs["input"] = str(corpus)
        where = str(corpus)
    else:
        kwargs["sentence_iterator"] = iter(corpus)
        where = "the training sentences"
    try:
        spm.SentencePieceTrainer.train(**kwargs)
    except RuntimeError as e:
        msg = str(e)
        if "Vocabulary size too high" in msg or "Vocabulary size is smaller than required_chars" in msg:
            detail = msg.split("] ", 1)[-1]
            raise InputError(f"sentencepiece vocab_size={vocab_size} ({model_type}) does not fit {where}:"
                             f" {detail}") from None
        raise InputError(f"sentencepiece training on {where} failed: {msg}") from None
    model_path = prefix.with_name(prefix.name + ".model")
    sp = spm.SentencePieceProcessor()
    sp.Load(str(model_path))
    fairseq_dictionary(sp, model_path).save(prefix.with_name(prefix.name + ".txt"))
    return SentencePieceTokenizer(model_path)


def fairseq_dictionary(sp: spm.SentencePieceProcessor, model_path: str | Path = "<model>") -> Dictionary:
    """gen_vocab's export: the pieces after the four specials, in id order, each with count 1."""
    pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
    if pieces[:4] != [BOS, PAD, EOS, UNK]:
        raise InputError(f"{model_path}: special pieces are {pieces[:4]}, fairseq needs"
                         f" {[BOS, PAD, EOS, UNK]} at ids 0..3 (train with bos_id=0 pad_id=1 eos_id=2 unk_id=3)")
    d = Dictionary()
    for piece in pieces[4:]:
        d.add_symbol(piece, n=1)
    return d


class SentencePieceTokenizer:
    """A SentencePiece model plus its fairseq dictionary (`<prefix>.txt` next to the model when present,
    otherwise derived from the model as gen_vocab derives it)."""

    def __init__(self, model_path: str | Path, dictionary: Dictionary | str | Path | None = None) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise InputError(f"{self.model_path}: sentencepiece model not found")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(self.model_path))
        except (OSError, RuntimeError) as e:
            raise InputError(f"{self.model_path}: not a sentencepiece model ({e})") from None
        if dictionary is None:
            txt = self.model_path.with_suffix(".txt")
            dictionary = txt if txt.is_file() else None
        if isinstance(dictionary, (str, Path)):
            dictionary = Dictionary.load(dictionary)
        self.dictionary = dictionary if dictionary is not None else fairseq_dictionary(self.sp, self.model_path)

    def encode(self, text: str) -> str:
        """Text -> space-joined pieces (fairseq SentencepieceBPE.encode)."""
        return " ".join(self.sp.EncodeAsPieces(text))

    def decode(self, pieces: str) -> str:
        """Space-joined pieces -> text (fairseq SentencepieceBPE.decode)."""
        return pieces.replace(" ", "").replace(WORD_BOUNDARY, " ").strip()

    def encode_ids(self, text: str, append_eos: bool = True) -> torch.Tensor:
        """Text -> dictionary ids, as the S2T dataset does: pieces, then `encode_line` (unknown pieces -> <unk>)."""
        return self.dictionary.encode_line(self.encode(text), append_eos=append_eos, add_if_not_exist=False)

    def decode_ids(self, ids: Iterable[int] | torch.Tensor) -> str:
        return self.decode(self.dictionary.string(ids))
