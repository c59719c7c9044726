"""fairseq Dictionary (fairseq/data/dictionary.py): dict.txt round trip, special ids, finalize padding."""
import pytest
import torch

from speechkd.errors import InputError
from speechkd.tokenizers.dictionary import Dictionary, remove_bpe


def test_special_ids_are_fairseqs():
    d = Dictionary()
    assert d.symbols == ["<s>", "<pad>", "</s>", "<unk>"]
    assert (d.bos(), d.pad(), d.eos(), d.unk()) == (0, 1, 2, 3)
    assert d.index("never-seen") == 3 and d[99] == "<unk>"


def test_load_save_round_trip(tmp_path):
    src = tmp_path / "dict.txt"
    src.write_text("der 120\ndie 100\nHaus@@ 7\n", encoding="utf-8")
    d = Dictionary.load(src)
    assert len(d) == 7
    assert [d.index(s) for s in ("der", "die", "Haus@@")] == [4, 5, 6]
    assert d.count[4:] == [120, 100, 7]
    out = tmp_path / "out.txt"
    d.save(out)
    assert out.read_text(encoding="utf-8") == src.read_text(encoding="utf-8")
    assert Dictionary.load(out) == d


def test_encode_line_and_string():
    d = Dictionary()
    for s in ("ein", "Ha@@", "us"):
        d.add_symbol(s)
    ids = d.encode_line("ein  Ha@@ us\tfremd")
    assert ids.tolist() == [4, 5, 6, 3, 2]
    assert d.encode_line("ein", append_eos=False, prepend_bos=True).tolist() == [0, 4]
    assert d.string(ids) == "ein Ha@@ us <unk>"
    assert d.string(ids, bpe_symbol="@@ ") == "ein Haus <unk>"
    assert d.string(torch.tensor([4, 3, 2, 1]), escape_unk=True) == "ein <<unk>>"
    grown = d.encode_line("neu", add_if_not_exist=True)
    assert grown.tolist() == [7, 2] and d.index("neu") == 7


def test_finalize_sorts_by_count_then_symbol_and_pads_with_madeupwords():
    corpus = ["b a c a", "c a e d"]
    d = Dictionary.build(corpus, padding_factor=8)
    # a:3, c:2, then b, d and e tie at 1 and sort by symbol; 4 + 5 symbols pad up to 16
    assert d.symbols[4:9] == ["a", "c", "b", "d", "e"]
    assert d.symbols[9:] == [f"madeupword{i:04d}" for i in range(7)] and len(d) == 16
    assert d.count[9:] == [0] * 7
    assert Dictionary.build(corpus, threshold=2, padding_factor=1).symbols[4:] == ["a", "c"]
    assert Dictionary.build(corpus, nwords=6, padding_factor=1).symbols[4:] == ["a", "c"]


def test_extra_special_symbols_count_as_special():
    d = Dictionary(extra_special=["<mask>"])
    assert d.nspecial == 5 and d.index("<mask>") == 4
    for s in "xyyzzz":
        d.add_symbol(s)
    d.finalize(padding_factor=1)
    assert d.symbols == ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "z", "y", "x"]


def test_overwrite_flag(tmp_path):
    f = tmp_path / "dict.txt"
    f.write_text("a 5\nb 3\na 9 #fairseq:overwrite\n", encoding="utf-8")
    d = Dictionary.load(f)
    assert len(d) == 7 and d.index("a") == 6 and d.count[6] == 9
    d.save(tmp_path / "again.txt")
    assert Dictionary.load(tmp_path / "again.txt") == d


def test_duplicate_without_flag_is_an_error(tmp_path):
    f = tmp_path / "dict.txt"
    f.write_text("a 5\na 9\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"dict.txt:2: duplicate symbol 'a'"):
        Dictionary.load(f)


@pytest.mark.parametrize("bad", ["lonely", "word notanumber", "word 12 #other-flag"])
def test_bad_line_names_file_and_line(tmp_path, bad):
    f = tmp_path / "dict.txt"
    f.write_text(f"ok 1\n{bad}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"dict.txt:2: expected '<symbol> <count>"):
        Dictionary.load(f)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Dictionary.load(tmp_path / "nope.txt")


def test_remove_bpe_post_process_options():
    # the appended space also removes a dangling final "@@"
    assert remove_bpe("Ha@@ us und Gar@@ ten@@") == "Haus und Garten"
    assert remove_bpe("Ha@@ us", "subword_nmt") == "Haus"
    assert remove_bpe("\u2581Ha us \u2581und", "sentencepiece") == "Haus und"
    assert remove_bpe("h a | d u", "letter") == "ha du"
    with pytest.raises(ValueError, match="unknown post-process option"):
        remove_bpe("x", "wordpiece?")
