"""Tokenisation, wordpiece-to-word alignment and batch planning."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.batching import plan_batches
from bert_repro.errors import DataError, InputTooLongError
from bert_repro.pipeline import encode_texts, encode_words, pad_batch


def test_word_index_matches_the_tokenizers_own_word_ids(tiny_bert):
    _, tok = tiny_bert
    sents = [["The", "dogs", "coding", "xyzzy", "!"], ["debugger", "3.14", "co-op"]]
    for sent, enc in zip(sents, encode_words(tok, sents), strict=True):
        ref = tok(sent, is_split_into_words=True).word_ids()
        assert enc.word_index.tolist() == [-1 if w is None else w for w in ref]
        assert enc.n_words == len(sent)
        assert enc.word_index[0] == -1 and enc.word_index[-1] == -1  # [CLS], [SEP]


def test_word_with_no_wordpiece_gets_unk(tiny_bert):
    _, tok = tiny_bert
    (enc,) = encode_words(tok, [["the", "\u200b", "dog"]])  # zero-width space: no pieces
    assert sorted(set(enc.word_index.tolist()) - {-1}) == [0, 1, 2]
    piece = enc.input_ids[enc.word_index == 1]
    assert piece.tolist() == [tok.unk_token_id]


def test_too_long_text_is_named_not_truncated(tiny_bert):
    _, tok = tiny_bert
    texts = ["the dog", "the " * 100]
    with pytest.raises(InputTooLongError, match="text 1"):
        encode_texts(tok, texts)


def test_empty_sentence_is_an_error(tiny_bert):
    _, tok = tiny_bert
    with pytest.raises(DataError, match="sentence 1 has no words"):
        encode_words(tok, [["a"], []])


def test_plan_covers_every_item_once_sorted_by_length():
    lengths = [5, 1, 9, 9, 3, 7, 2]
    plan = plan_batches(lengths, 3)
    flat = np.concatenate(plan)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert [len(b) for b in plan] == [3, 3, 1]  # the last partial batch is kept


def test_pad_batch_masks_padding(tiny_bert):
    _, tok = tiny_bert
    items = encode_words(tok, [["the", "dog"], ["a", "cat", "is", "good"]])
    b = pad_batch(items, np.array([1, 0]))
    assert b["input_ids"].shape[1] % 8 == 0
    assert b["attention_mask"].sum(1).tolist() == [len(items[1]), len(items[0])]
    assert b["word_mask"].sum(1).tolist() == [4, 2]
    assert (b["word_index"][b["attention_mask"] == 0] == -1).all()


def test_a_slow_tokenizer_as_the_seed_passes_gives_the_same_encoding(tiny_bert, tiny_bert_dir):
    from transformers import BertTokenizer

    _, fast = tiny_bert
    slow = BertTokenizer.from_pretrained(tiny_bert_dir)
    sents = [["The", "dogs", "coding", "xyzzy", "!"], ["co-op", "3.14"]]
    for a, b in zip(encode_words(slow, sents), encode_words(fast, sents), strict=True):
        assert a.input_ids.tolist() == b.input_ids.tolist()
        assert a.word_index.tolist() == b.word_index.tolist()
