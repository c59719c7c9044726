"""fairseq's Dictionary: the `dict.txt` vocabulary every fairseq model and our units/BPE vocabularies use.

Format (fairseq/data/dictionary.py): one `<symbol> <count>` per line, optionally followed by the flag
`#fairseq:overwrite`; the four special symbols are not in the file and take ids 0..3 in the order
`<s>`, `<pad>`, `</s>`, `<unk>`. `finalize(padding_factor=8)` pads the vocabulary with `madeupwordNNNN`
so its size is a multiple of 8, which is why released checkpoints have embedding rows beyond the file.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

import torch

from ..errors import InputError
from ..fileio import read_text_lines, write_text_atomic

BOS, PAD, EOS, UNK = "<s>", "<pad>", "</s>", "<unk>"
OVERWRITE_FLAG = "#fairseq:overwrite"


class Dictionary:
    def __init__(self, extra_special: Iterable[str] = ()) -> None:
        self.symbols: list[str] = []
        self.count: list[int] = []
        self.indices: dict[str, int] = {}
        for sym in (BOS, PAD, EOS, UNK):
            self.add_symbol(sym, n=1)
        for sym in extra_special:
            self.add_symbol(sym, n=1)
        # fairseq counts the extra special symbols as special: finalize() keeps them in place and
        # save() leaves them out of the file (fairseq Dictionary.__init__ sets nspecial after adding them)
        self.nspecial = len(self.symbols)
        self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3

    # --- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, idx: int) -> str:
        return self.symbols[idx] if 0 <= idx < len(self.symbols) else UNK

    def __contains__(self, sym: str) -> bool:
        return sym in self.indices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dictionary) and self.symbols == other.symbols

    def index(self, sym: str) -> int:
        return self.indices.get(sym, self.unk_index)

    def bos(self) -> int:
        return self.bos_index

    def pad(self) -> int:
        return self.pad_index

    def eos(self) -> int:
        return self.eos_index

    def unk(self) -> int:
        return self.unk_index

    # --- building -----------------------------------------------------------------------------
    def add_symbol(self, sym: str, n: int = 1, overwrite: bool = False) -> int:
        if sym in self.indices and not overwrite:
            idx = self.indices[sym]
            self.count[idx] += n
            return idx
        idx = len(self.symbols)
        self.indices[sym] = idx
        self.symbols.append(sym)
        self.count.append(n)
        return idx

    def finalize(self, threshold: int = -1, nwords: int = -1, padding_factor: int = 8) -> None:
        """Sort non-special symbols by count (ties by symbol), drop rare ones, pad to a multiple
        (fairseq Dictionary.finalize)."""
        if nwords <= 0:
            nwords = len(self)
        special = list(zip(self.symbols[: self.nspecial], self.count[: self.nspecial]))
        rest = Counter(dict(zip(self.symbols[self.nspecial:], self.count[self.nspecial:])))
        kept = [(s, c) for s, c in sorted(rest.items(), key=lambda kv: (-kv[1], kv[0]))
                if c >= threshold][: max(nwords - self.nspecial, 0)]
        self.symbols, self.count, self.indices = [], [], {}
        for sym, c in special + kept:
            self.add_symbol(sym, c)
        self.pad_to_multiple(padding_factor)

    def pad_to_multiple(self, padding_factor: int) -> None:
        i = 0
        while padding_factor > 1 and len(self) % padding_factor != 0:
            self.add_symbol(f"madeupword{i:04d}", n=0)
            i += 1

    @classmethod
    def build(cls, lines: Iterable[str], threshold: int = -1, nwords: int = -1,
              padding_factor: int = 8, extra_special: Iterable[str] = ()) -> "Dictionary":
        d = cls(extra_special)
        for line in lines:
            for tok in line.split():
                d.add_symbol(tok)
        d.finalize(threshold, nwords, padding_factor)
        return d

    # --- files --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "Dictionary":
        d = cls()
        d.add_from_file(path)
        return d

    def add_from_file(self, path: str | Path) -> None:
        path = Path(path)
        lines = read_text_lines(path, "dictionary file", sep=" ", columns=("symbol", "count", OVERWRITE_FLAG))
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fields = line.rstrip().rsplit(" ", 1)
            overwrite = False
            if len(fields) == 2 and fields[1] == OVERWRITE_FLAG:
                overwrite = True
                fields = fields[0].rsplit(" ", 1)
            try:
                if len(fields) != 2:
                    raise ValueError
                sym, n = fields[0], int(fields[1])
            except ValueError:
                raise InputError(f"{path}:{lineno}: expected '<symbol> <count> [{OVERWRITE_FLAG}]'"
                                 f" (fairseq dict.txt), got {line!r}") from None
            if sym in self.indices and not overwrite:
                raise InputError(f"{path}:{lineno}: duplicate symbol {sym!r}; fairseq needs '{OVERWRITE_FLAG}'"
                                 " to allow it")
            self.add_symbol(sym, n, overwrite=overwrite)

    def save(self, path: str | Path) -> None:
        """Writes the non-special symbols (madeupwords included) as fairseq's `save` does. A symbol that
        repeats (loaded with `#fairseq:overwrite`) is written with the flag again, so the file loads back."""
        seen: set[str] = set(self.symbols[: self.nspecial])
        lines = []
        for s, c in zip(self.symbols[self.nspecial:], self.count[self.nspecial:]):
            lines.append(f"{s} {c} {OVERWRITE_FLAG}\n" if s in seen else f"{s} {c}\n")
            seen.add(s)
        write_text_atomic(path, "".join(lines))

    # --- encoding -----------------------------------------------------------------------------
    def encode_line(self, line: str, append_eos: bool = True, add_if_not_exist: bool = False,
                    prepend_bos: bool = False) -> torch.Tensor:
        ids = [self.bos_index] if prepend_bos else []
        for tok in line.split():
            ids.append(self.add_symbol(tok) if add_if_not_exist else self.index(tok))
        if append_eos:
            ids.append(self.eos_index)
        return torch.tensor(ids, dtype=torch.long)

    def string(self, ids: Iterable[int] | torch.Tensor, bpe_symbol: str | None = None,
               strip_special: bool = True, escape_unk: bool = False) -> str:
        """ids -> text; eos/pad/bos dropped as fairseq's `string` drops them; `bpe_symbol="@@ "`
        removes BPE continuation marks."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        skip = {self.eos_index, self.pad_index, self.bos_index} if strip_special else set()
        toks = []
        for i in ids:
            if i in skip:
                continue
            toks.append("<<unk>>" if escape_unk and i == self.unk_index else self[i])
        text = " ".join(toks)
        return remove_bpe(text, bpe_symbol) if bpe_symbol else text


def remove_bpe(text: str, bpe_symbol: str = "@@ ") -> str:
    """fairseq data_utils.post_process: `"@@ "`/`"@@"`/`"subword_nmt"` remove subword-nmt/fastBPE
    continuation marks, `"sentencepiece"` joins pieces on U+2581, `"letter"` joins letters on `|`,
    `"none"` keeps the text."""
    if bpe_symbol == "sentencepiece":
        return text.replace(" ", "").replace("\u2581", " ").strip()
    if bpe_symbol == "letter":
        return text.replace(" ", "").replace("|", " ").strip()
    if bpe_symbol == "none":
        return text
    if bpe_symbol == "subword_nmt":
        bpe_symbol = "@@ "
    if bpe_symbol not in ("@@ ", "@@"):
        raise ValueError(f"unknown post-process option {bpe_symbol!r}; expected '@@ ', '@@', 'subword_nmt',"
                         " 'sentencepiece', 'letter' or 'none' (fairseq data_utils.post_process)")
    return (text + " ").replace(bpe_symbol, "").rstrip()
