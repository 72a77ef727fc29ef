"""ExtractionSettings (one object for how BERT runs) and tokenising each corpus once."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from bert_repro.errors import ConfigError
from bert_repro.settings import ExtractionSettings

SENTS = [
    "the dog said hello".split(),
    "a man and a woman were in the bank".split(),
    "river money".split(),
    ["python", "code", "is", "fun"],
]


def test_defaults_are_valid_and_frozen():
    s = ExtractionSettings()
    assert s.max_batch is None and s.layers is None and s.strategy is None
    assert s.num_replicas == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_tokens = 5  # type: ignore[misc]


def test_create_replaces_given_fields_and_ignores_none():
    base = ExtractionSettings(max_tokens=512)
    s = ExtractionSettings.create(base, layers=[0, -1], progress=False, max_batch=None)
    assert (s.max_tokens, s.layers, s.progress, s.max_batch) == (512, (0, -1), False, None)
    assert base.layers is None  # the original is unchanged
    assert ExtractionSettings.create(base) is base


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_batch": -2}, "max_batch"),
        ({"max_batch": True}, "max_batch"),
        ({"layers": "-1,-2"}, "layers"),
        ({"layers": [1.5]}, "layer indices"),
        ({"precision": "float64"}, "float32"),
        ({"cache_dtype": "int8"}, "float16"),
        ({"strategi": None, "laeyrs": 3}, "valid: cache_dtype, jit_compile, layers"),
    ],
)
def test_bad_values_name_the_setting(options, message):
    with pytest.raises(ConfigError, match=message):
        ExtractionSettings.create(**options)


def test_old_batch_size_keyword_still_works_and_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = ExtractionSettings.create(batch_size=4)
    assert s.max_batch == 4
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_describe_is_json_ready():
    import json

    s = ExtractionSettings(layers=(0, 2), jit_compile=True)
    assert json.loads(json.dumps(s.describe()))["layers"] == [0, 2]


@pytest.fixture
def count_tokenizer_calls(monkeypatch):
    """Count calls of the fast tokenizer (every tokenisation in the package goes through it)."""
    from transformers import PreTrainedTokenizerFast

    calls = []
    real = PreTrainedTokenizerFast.__call__

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("is_split_into_words", False))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerFast, "__call__", counting)
    return calls


def test_a_treebank_is_tokenised_once_from_length_checks_to_the_cache(
    tiny_bert, tmp_path, count_tokenizer_calls
):
    from bert_repro.probe.data import ProbeDataset

    model, tok = tiny_bert
    lines = []
    for s in SENTS:
        for i, w in enumerate(s, start=1):
            lines.append(
                f"{i}\t{w}\t_\tX\t_\t_\t{0 if i == 1 else 1}\t{'root' if i == 1 else 'dep'}\t_\t_"
            )
        lines.append("")
    path = tmp_path / "t.conllu"
    path.write_text("\n".join(lines) + "\n")
    ds = ProbeDataset(path, cache_dir=tmp_path / "cache")
    assert ds.too_long(model, tok) == []  # length check
    sub = ds.subset(range(len(ds)))  # what a sweep's filter does
    sub.check_fits(model, tok)
    store = sub.features(model, tok, progress=False)  # extraction into the cache
    sub.features(model, tok, progress=False)  # a cache hit
    assert len(count_tokenizer_calls) == 1, count_tokenizer_calls
    assert np.array_equal(store.lengths, ds.lengths)


def test_the_comparator_tokenises_its_texts_once(tiny_bert, count_tokenizer_calls):
    from bert_repro.plot import BertComparator

    model, tok = tiny_bert
    texts = [" ".join(s) for s in SENTS]
    result = BertComparator(model, model, tok, progress=False).compare(
        texts, sample_tokens=10, too_long="skip"
    )
    assert result.n_texts == len(texts)
    assert len(count_tokenizer_calls) == 1


def test_corpus_word_vectors_tokenises_its_texts_once(tiny_bert, count_tokenizer_calls):
    """One tokenizer call gives both the model's input and each wordpiece's word; the words
    pooled from it equal pooling by hand over the hidden states of each text alone."""
    from bert_repro.embeddings.words import corpus_word_vectors
    from bert_repro.features import hidden_states

    model, tok = tiny_bert
    texts = ["the cat sat", "a dog ran off quickly", "hi"]
    out = corpus_word_vectors(model, tok, texts, "last_layer", progress=False)
    assert len(count_tokenizer_calls) == 1, count_tokenizer_calls
    assert [tw.words for tw in out] == [tuple(t.split()) for t in texts]
    enc = tok(texts[1], add_special_tokens=True)
    hs = hidden_states(model, tok, [texts[1]], progress=False)[0][-1]  # (T, H) last layer
    wids = enc.word_ids()
    for w in range(len(out[1].words)):
        rows = [i for i, x in enumerate(wids) if x == w]
        np.testing.assert_allclose(out[1].vectors[w], hs[rows].mean(axis=0), atol=1e-5)
