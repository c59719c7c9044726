"""The expert's vocabulary on both sides of the ST pipeline: Moses-tokenised text -> fastBPE -> fairseq dict ids.

As in the fork (ast_paper.md §1.1), the student's target vocabulary IS the expert's: the S2T data config points
`vocab_filename` at the expert's dict and `bpe_tokenizer` at {bpe: fastbpe, bpe_codes: <expert bpecodes>}, so
student and expert token ids are identical. Two encoders mirror the two places the fork applies BPE:
- targets (fairseq S2T dataset, `fastbpe` encoder = fastBPE.fastBPE(codes), no vocabulary restriction):
  `encode_line(bpe(tgt_text), add_if_not_exist=False, append_eos=True)`;
- the expert's source (`transform_source_tokens_into_expert_voc`: fastBPE.fastBPE(codes, <expert tgt dict>),
  i.e. pieces missing from the dict are split back, then `expert_vocab_src.encode_line(..., append_eos=True)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..tokenizers.bpe import BPE
from ..tokenizers.dictionary import Dictionary

# file names inside a prep run's data directory (the fairseq / WMT19 release names)
CODES_FILE = "bpecodes"
DICT_FILE = "dict.txt"          # the joined dictionary (fairseq-preprocess --joined-dictionary)
LANG_DICT_FILE = "dict.{lang}.txt"  # the same dictionary under the names fairseq's translation task expects
# metrics.json "references" of st-generate / st-eval / st-score runs of translation models: BLEU and chrF were
# scored against the corpus's own raw text (and the logs' T- lines hold it), not references rebuilt from token ids
RAW_REFERENCES = "raw"
RAW_TEXT = "text/{split}.raw.{lang}"  # the corpus's untokenised text: what BLEU / chrF references are


@dataclass
class TextEncoder:
    """Tokenised text <-> ids with one BPE and one dictionary."""
    bpe: BPE
    dictionary: Dictionary

    @classmethod
    def load(cls, codes: str | Path, dictionary: str | Path, restrict_to_dict: bool = False) -> "TextEncoder":
        """restrict_to_dict: fastBPE's vocabulary restriction with the dict file (the fork's expert source)."""
        bpe = BPE.from_codes(codes, dictionary if restrict_to_dict else None)
        return cls(bpe, Dictionary.load(dictionary))

    def encode(self, text: str, append_eos: bool = True) -> torch.Tensor:
        return self.dictionary.encode_line(self.bpe.apply(text), append_eos=append_eos, add_if_not_exist=False)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """ids -> tokenised text with BPE removed (fairseq's tgt_dict.string + fastbpe decode); eos/pad dropped."""
        return self.dictionary.string(ids, bpe_symbol="@@ ")

    def pieces(self, ids: torch.Tensor | list[int]) -> str:
        """ids -> the BPE pieces (fairseq-generate's H- line without --remove-bpe)."""
        return self.dictionary.string(ids)
