"""SentencePiece vocabularies as fairseq's S2T gen_vocab builds them, with the fairseq dict.txt beside them."""
import pytest

from speechkd.errors import InputError
from speechkd.tokenizers.dictionary import Dictionary
from speechkd.tokenizers.sentencepiece import SentencePieceTokenizer, train_sentencepiece

CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world", "the dog sleeps", "a fox is quick",
          "my brown dog jumps quickly over the sleeping cat", "hello lazy fox and quick brown cats",
          "the world is wide and the fox is brown"] * 20


@pytest.mark.parametrize("model_type,size", [("unigram", 40), ("bpe", 40), ("char", 31)])
def test_train_writes_model_and_fairseq_dict(tmp_path, model_type, size):
    tok = train_sentencepiece(CORPUS, tmp_path / "spm", size, model_type)
    for ext in (".model", ".vocab", ".txt"):
        assert (tmp_path / f"spm{ext}").is_file()
    lines = (tmp_path / "spm.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == size - 4 and all(line.endswith(" 1") for line in lines)
    d = Dictionary.load(tmp_path / "spm.txt")
    # fairseq ids and SentencePiece ids coincide, specials included
    assert [d[i] for i in range(size)] == [tok.sp.IdToPiece(i) for i in range(size)]
    assert d.symbols[:4] == ["<s>", "<pad>", "</s>", "<unk>"]


def test_encode_decode_like_fairseq_sentencepiece_bpe(tmp_path):
    tok = train_sentencepiece(CORPUS, tmp_path / "spm", 40, "bpe")
    pieces = tok.encode("the dog")
    assert pieces.startswith("\u2581") and tok.decode(pieces) == "the dog"
    ids = tok.encode_ids("the dog")
    assert ids[-1].item() == 2
    assert ids[:-1].tolist() == [tok.sp.PieceToId(p) for p in pieces.split()]
    assert tok.decode_ids(ids) == "the dog"
    assert 3 in tok.encode_ids("QQ").tolist()  # a character never seen maps to <unk>


def test_loading_uses_the_dict_next_to_the_model(tmp_path):
    train_sentencepiece(CORPUS, tmp_path / "spm", 40)
    again = SentencePieceTokenizer(tmp_path / "spm.model")
    assert again.dictionary == Dictionary.load(tmp_path / "spm.txt") and len(again.dictionary) == 40


def test_training_is_deterministic(tmp_path):
    train_sentencepiece(CORPUS, tmp_path / "a", 40)
    train_sentencepiece(CORPUS, tmp_path / "b", 40)
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()


def test_special_symbols_follow_the_fairseq_specials(tmp_path):
    tok = train_sentencepiece(CORPUS, tmp_path / "spm", 40, special_symbols=["<lang:de>"])
    assert tok.dictionary.index("<lang:de>") == 4 == tok.sp.PieceToId("<lang:de>")


def test_corpus_file_and_clear_errors(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    assert len(train_sentencepiece(corpus, tmp_path / "f", 36).dictionary) == 36
    with pytest.raises(InputError, match=r"vocab_size=5000 \(unigram\) does not fit .*<= \d+"):
        train_sentencepiece(corpus, tmp_path / "big", 5000)
    with pytest.raises(InputError, match="smaller than required_chars"):
        train_sentencepiece(CORPUS, tmp_path / "small", 10, "bpe")
    with pytest.raises(InputError, match="model_type"):
        train_sentencepiece(CORPUS, tmp_path / "x", 40, "wordpiece")
    with pytest.raises(InputError, match="not found"):
        train_sentencepiece(tmp_path / "missing.txt", tmp_path / "x", 40)
    with pytest.raises(InputError, match="not found"):
        SentencePieceTokenizer(tmp_path / "missing.model")
