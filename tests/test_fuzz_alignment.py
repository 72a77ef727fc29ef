"""Word alignment under odd text (issue 8): emoji, CJK, accents and combining marks, URLs, very
long words, characters that become [UNK], words that tokenise to nothing, literal special-token
strings. ``encode_words``' wordpiece-to-word map must equal a word-by-word brute force and the
tokenizer's own word ids, and a word with no wordpiece gets one ``[UNK]`` piece."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from conftest import tiny_vocab
from hypothesis import HealthCheck, given, settings

from bert_repro.errors import DataError
from bert_repro.pipeline import as_word_lists, encode_words

ODD_WORDS = [
    "héllo",
    "ÜNÏCÖDÉ",
    "e\u0301",  # e + combining acute
    "\u0301",  # a combining mark alone: no wordpiece
    "😀",
    "👩\u200d👩\u200d👧",
    "東京",
    "한국어",
    "https://example.org/a?b=c&d=e#f",
    "a" * 120,  # longer than WordPiece's 100 characters: one [UNK]
    "x" * 400,
    "\u200b",  # zero-width space: no wordpiece
    "",
    " ",
    "\t\n",
    "\x00",
    "\ufeff",
    "\u00ad",  # soft hyphen
    "[SEP]",
    "[CLS]",
    "[UNK]",
    "[PAD]",
    "##",
    "##s",
    "don't",
    "U.S.",
    "a b",  # a word holding a space
    "coding",
    "debugged",
    "ﬁ",
    "İstanbul",
    "ß",
    "1,000.5",
    "the",
]
WORDS = st.one_of(
    st.sampled_from(ODD_WORDS),
    st.text(max_size=6),
    st.text(alphabet=st.characters(categories=["Mn", "Cf", "Cc", "Zs", "So"]), max_size=3),
)
SENTENCES = st.lists(st.lists(WORDS, min_size=1, max_size=8), min_size=1, max_size=4)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    """The tiny test vocabulary (letters, ##letters, digits, punctuation, a few words); no TF."""
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tok")
    (folder / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import BertTokenizerFast

    from bert_repro.models import default_model_path

    return BertTokenizerFast.from_pretrained(str(default_model_path()))


def brute_force(tok, words):
    """Each word tokenised alone ([UNK] if it gives nothing), concatenated between specials."""
    ids, index = [tok.cls_token_id], [-1]
    for j, word in enumerate(words):
        pieces = tok(word, add_special_tokens=False)["input_ids"] or [tok.unk_token_id]
        ids += pieces
        index += [j] * len(pieces)
    return ids + [tok.sep_token_id], index + [-1]


def check_alignment(tok, sentences):
    encoded = encode_words(tok, sentences, max_length=10**6)
    assert len(encoded) == len(sentences)
    for words, enc in zip(sentences, encoded, strict=True):
        ids, index = enc.input_ids.tolist(), enc.word_index.tolist()
        assert enc.n_words == len(words) and len(ids) == len(index)
        # never off by one: exactly the word-by-word tokenisation
        assert (ids, index) == brute_force(tok, words), words
        inner = np.asarray(index[1:-1])
        assert index[0] == index[-1] == -1 and (inner >= 0).all()
        assert (np.diff(inner) >= 0).all() and set(inner.tolist()) == set(range(len(words)))
        # and the tokenizer's own word ids, once empty words are given [UNK]
        fixed = [
            w if tok(w, add_special_tokens=False)["input_ids"] else tok.unk_token for w in words
        ]
        own = tok(fixed, is_split_into_words=True)
        assert ids == own["input_ids"]
        assert index == [-1 if w is None else w for w in own.word_ids()]
        empty = [j for j, w in enumerate(words) if w is not fixed[j]]
        for j in empty:  # a word with no wordpiece gets exactly one [UNK]
            assert [ids[t] for t in np.flatnonzero(np.asarray(index) == j)] == [tok.unk_token_id]


@FUZZ
@given(SENTENCES)
def test_alignment_matches_brute_force_and_word_ids_tiny_vocab(tiny_tokenizer, sentences):
    check_alignment(tiny_tokenizer, sentences)


def test_each_odd_word_tiny_vocab(tiny_tokenizer):
    check_alignment(tiny_tokenizer, [ODD_WORDS, *[[w] for w in ODD_WORDS]])


@pytest.mark.integration
def test_each_odd_word_minilm(minilm_tokenizer):
    tok = minilm_tokenizer
    check_alignment(tok, [ODD_WORDS, *[[w] for w in ODD_WORDS]])
    (enc,) = encode_words(tok, [["dog", "\u0301", "東京", "a" * 120, "\u200b", "cat"]])
    pieces = tok.convert_ids_to_tokens(enc.input_ids.tolist())
    assert pieces == ["[CLS]", "dog", "[UNK]", "東", "京", "[UNK]", "[UNK]", "cat", "[SEP]"]
    assert enc.word_index.tolist() == [-1, 0, 1, 2, 2, 3, 4, 5, -1]


@pytest.mark.integration
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(SENTENCES)
def test_alignment_matches_brute_force_and_word_ids_minilm(minilm_tokenizer, sentences):
    check_alignment(minilm_tokenizer, sentences)


def test_a_string_is_never_taken_for_a_list_of_words(tiny_tokenizer):
    with pytest.raises(DataError, match="sentence 1 is a string"):
        encode_words(tiny_tokenizer, [["a", "dog"], "the cat"])
    with pytest.raises(DataError, match="single string"):
        as_word_lists("the dog")
    with pytest.raises(DataError, match="sentence 0 has no words"):
        encode_words(tiny_tokenizer, [[]])
    with pytest.raises(DataError, match="not a list of strings"):
        encode_words(tiny_tokenizer, [["a", 3]])


def test_empty_word_vector_is_its_unk_piece(tiny_bert):
    """End to end: the word with no wordpiece is the [UNK] position's hidden state."""
    from bert_repro.features import hidden_states, word_features

    model, tok = tiny_bert
    (words,) = word_features(model, tok, [["dog", "\u200b", "cat"]], progress=False)
    (pieces,) = hidden_states(model, tok, ["dog [UNK] cat"], progress=False)
    assert words.shape[1] == 3
    np.testing.assert_allclose(words[:, 1], pieces[:, 2], atol=1e-5)
    np.testing.assert_allclose(words[:, 0], pieces[:, 1], atol=1e-5)
