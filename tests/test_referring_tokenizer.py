"""WordPiece tokenisation against hand-worked examples and the published 20-id encoding."""
import warnings

import pytest

from afb_urr.referring.tokenizer import VocabularyError, WordPieceTokenizer, basic_tokens, load_tokenizer
from referring_common import write_vocab

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "man", "in", "white", "un", "##aff", "##able",
         "aff", "##a", "red", "'", "s", "!", ",", "cafe", "中", "国", "play", "##ing", "##er", "judo", "##ka"]


@pytest.fixture
def tok(tmp_path):
    return load_tokenizer(write_vocab(tmp_path, VOCAB))


def test_basic_step_by_hand():
    assert basic_tokens("The MAN's  hat,\tCafé!") == ["the", "man", "'", "s", "hat", ",", "cafe", "!"]
    assert basic_tokens("中国x") == ["中", "国", "x"]
    assert basic_tokens("a\x00b\u200bc d\u00a0e") == ["abc", "d", "e"]  # control/format dropped, nbsp splits
    assert basic_tokens("naïve—ok") == ["naive", "—", "ok"]  # em dash is punctuation (category Pd)


def test_wordpiece_by_hand(tok):
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]  # greedy longest match from the left
    assert tok.tokenize("affa") == ["aff", "##a"]
    assert tok.tokenize("unaffx") == ["[UNK]"]  # a word without a full match is one [UNK]
    assert tok.tokenize("Judoka PLAYING") == ["judo", "##ka", "play", "##ing"]
    assert tok.tokenize("the man in white!") == ["the", "man", "in", "white", "!"]
    assert tok.tokenize("x" * 101) == ["[UNK]"]


def test_encode_published_layout(tok):
    ids, mask = tok.encode("The man in white")
    assert ids == [2, 5, 6, 7, 8, 3] + [0] * 14
    assert mask == [1] * 6 + [0] * 14
    t_ids, t_mask = tok(["the man", "red"])
    assert t_ids.shape == (2, 20) and str(t_ids.dtype) == "torch.int64"
    assert t_ids[1, :3].tolist() == [2, 14, 3] and t_mask[1].sum() == 3


def test_truncation_drops_sep_with_a_warning(tok):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids, mask = tok.encode(" ".join(["red"] * 18))  # 18 pieces + 2 specials = 20: kept whole
    assert ids[-1] == 3 and sum(mask) == 20
    with pytest.warns(UserWarning, match="published truncation"):
        ids, mask = tok.encode(" ".join(["red"] * 18 + ["man", "white"]))
    assert ids == [2] + [14] * 18 + [6] and mask == [1] * 20  # QUIRK: no [SEP]


def test_empty_expression_is_an_error(tok):
    for text in ("", "   ", "\x00\t"):
        with pytest.raises(ValueError, match="empty referring expression"):
            tok.encode(text)
    with pytest.raises(ValueError, match="no referring expression"):
        tok([])


def test_matches_hf_tokenizers_library(tok, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.BertWordPieceTokenizer(write_vocab(tmp_path, VOCAB), lowercase=True)
    for text in ["The man in WHITE, playing!", "unaffable café 中国", "the judoka's red", "unaffx man", "Ünaffable"]:
        ours = tok.encode(text)[0]
        assert ours[:sum(tok.encode(text)[1])] == hf.encode(text).ids, text


def test_vocabulary_errors(tmp_path):
    with pytest.raises(VocabularyError, match="not found"):
        load_tokenizer(str(tmp_path / "missing.txt"))
    with pytest.raises(VocabularyError, match="not found"):
        load_tokenizer(str(tmp_path))  # a folder without vocab.txt
    with pytest.raises(VocabularyError, match=r"\[PAD\] must be line 1"):
        WordPieceTokenizer(["[UNK]", "[PAD]", "[CLS]", "[SEP]"])
    with pytest.raises(VocabularyError, match=r"special tokens \['\[CLS\]'\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[SEP]", "the"])
    with pytest.raises(VocabularyError, match="appears twice"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"])
    folder = tmp_path / "bert"
    folder.mkdir()
    write_vocab(folder, VOCAB)
    assert load_tokenizer(str(folder)).vocab_size == len(VOCAB)
