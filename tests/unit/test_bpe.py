"""fastBPE-compatible BPE (glample/fastBPE, fastBPE.hpp): hand-worked learn/apply examples, and parity with
fastBPE's own output where the reference fixture (tests/fixtures/bpe/, made by fastBPE) is present."""
import json

import pytest

from speechkd.errors import InputError
from speechkd.tokenizers.bpe import BPE, learn_bpe, read_codes, remove_bpe, write_codes
from support.paths import FAIRSEQ_FIXTURES, FIXTURES

FIXTURE = FIXTURES / "bpe"
CORPUS = ["low lower lowest newer wider new"]


def test_learn_bpe_hand_worked():
    merges = learn_bpe(CORPUS, 4)
    # (l,o) and (w,e) both occur 3 times; the tie goes to the pair of smaller ids: l and o were met first.
    # Then (n,e)=2 and (lo,we)=2 tie with (we,r</w>)=2: characters' ids are smaller than merged symbols'.
    assert merges == [("l", "o", 3), ("w", "e", 3), ("n", "e", 2), ("lo", "we", 2)]


def test_learn_bpe_stops_when_no_pair_is_left():
    assert learn_bpe(["ab ab"], 10) == [("a", "b</w>", 2)]
    assert learn_bpe([""], 5) == []


def test_learn_counts_overlapping_pairs_then_merges_left_to_right():
    # "aaaa" = a a a a</w>: (a,a) is counted at both overlapping places (count 2) but merging left to right
    # gives aa a a</w>; then (a,a</w>) and (aa,a) tie at 1 and the smaller ids win (a=0, a</w>=1, aa=2).
    assert learn_bpe(["aaaa"], 3) == [("a", "a", 2), ("a", "a</w>", 1), ("aa", "aa</w>", 1)]


def test_apply_merges_by_rank_not_position():
    bpe = BPE([("b", "c", 1), ("a", "b", 1)])
    assert bpe.apply("abcd") == "a@@ bc@@ d"  # (b,c) has the better rank although (a,b) comes first


def test_apply_hand_worked():
    bpe = BPE(learn_bpe(CORPUS, 6))  # l+o, w+e, n+e, lo+we, w+i, e+r</w>
    assert bpe.apply("lowest") == "lowe@@ s@@ t"
    # newer = n e w e r</w>: (w,e) rank 1 beats (n,e) rank 2 and (e,r</w>) rank 5, and then e no longer
    # touches r</w>
    assert bpe.apply("lower newer") == "lowe@@ r ne@@ we@@ r"
    assert bpe.apply("x") == "x"


def test_end_of_word_marker():
    bpe = BPE([("e", "r</w>", 1)])
    assert bpe.apply("newer err") == "n@@ e@@ w@@ er e@@ r@@ r"


def test_repeated_pair_merges_left_to_right():
    bpe = BPE([("a", "a", 1)])
    assert bpe.apply("aaaa aaaaa") == "aa@@ a@@ a aa@@ aa@@ a"


def test_unicode_characters_are_code_points():
    bpe = BPE([("ö", "ß", 1), ("öß", "e</w>", 1)])
    assert bpe.apply("Größe") == "G@@ r@@ öße"


def test_whitespace_like_fastbpe_applyer():
    bpe = BPE([])
    assert bpe.apply("  ab   c ") == "a@@ b c"  # split on " " only, empty fields dropped
    assert bpe.apply("a\tb") == "a@@ \t@@ b"   # a tab is part of the word for fastBPE
    assert bpe.apply("") == ""


def test_vocab_limit_decomposes_unknown_pieces():
    merges = [("l", "o", 1), ("lo", "w</w>", 1)]
    assert BPE(merges).apply("low") == "low"
    assert BPE(merges, vocab={"lo@@", "w"}).apply("low") == "lo@@ w"
    # neither "lo@@" nor "w" known: down to characters, kept even though unknown
    assert BPE(merges, vocab={"zzz"}).apply("low") == "l@@ o@@ w"
    assert BPE(merges, vocab={"low"}).apply("low") == "low"


def test_round_trip_and_cache():
    lines = ["the lowest newer wider", "lower new low", "wider and wider"]
    bpe = BPE(learn_bpe(lines, 12))
    encoded = [bpe.apply(line) for line in lines]
    assert [remove_bpe(e) for e in encoded] == lines
    assert bpe.decode(encoded[0]) == lines[0]
    assert "wider" in bpe._cache and [bpe.apply(line) for line in lines] == encoded


def test_codes_file_round_trip(tmp_path):
    merges = learn_bpe(CORPUS, 8)
    write_codes(tmp_path / "codes", merges)
    assert (tmp_path / "codes").read_text().splitlines()[0] == "l o 3"
    assert read_codes(tmp_path / "codes") == merges
    assert BPE.from_codes(tmp_path / "codes").apply("lowest") == BPE(merges).apply("lowest")


@pytest.mark.parametrize("bad", ["l o", "l o 3 extra", "l o three"])
def test_malformed_codes_line(tmp_path, bad):
    f = tmp_path / "codes"
    f.write_text(f"a b 5\n{bad}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"codes:2: expected 'left right count'"):
        BPE.from_codes(f)


def test_duplicate_merge_and_missing_files(tmp_path):
    f = tmp_path / "codes"
    f.write_text("a b 5\na b 4\n", encoding="utf-8")
    with pytest.raises(InputError, match="duplicate merge"):
        BPE.from_codes(f)
    with pytest.raises(InputError, match="not found"):
        BPE.from_codes(tmp_path / "missing")
    (tmp_path / "ok").write_text("a b 5\n")
    (tmp_path / "vocab").write_text("ab 3\nbroken\n")
    with pytest.raises(InputError, match=r"vocab:2: expected 'word count'"):
        BPE.from_codes(tmp_path / "ok", tmp_path / "vocab")


def _fixture(name):
    path = FIXTURE / name
    if not path.is_file():
        pytest.skip(f"no fastBPE reference fixture {path} (rebuild: tests/fixtures/bpe/make_fixture.py)")
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_parity_with_fastbpe_output():
    lines, expected = _fixture("input.txt"), _fixture("expected.txt")
    bpe = BPE.from_codes(FIXTURE / "codes")
    assert [bpe.apply(line) for line in lines] == expected


def test_parity_with_fastbpe_output_limited_to_vocab():
    lines, expected = _fixture("input.txt"), _fixture("expected_vocab.txt")
    bpe = BPE.from_codes(FIXTURE / "codes", FIXTURE / "vocab.txt")
    assert [bpe.apply(line) for line in lines] == expected


def test_parity_with_fastbpe_on_the_nmt_fixture_codes():
    ref_path = FAIRSEQ_FIXTURES / "bpe_ref.json"
    if not ref_path.is_file():
        pytest.skip(f"no fastBPE reference {ref_path} (written with the fairseq fixtures)")
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    bpe = BPE.from_codes(ref_path.parent / ref["codes"])
    assert [bpe.apply(line) for line in ref["raw"]] == ref["bpe"]
    assert [remove_bpe(b, ref["bpe_symbol"]) for b in ref["bpe"]] == ref["raw"]
