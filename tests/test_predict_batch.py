"""Evaluation batches run through one compiled function per model, traced once for every
batch shape, with predict_on_batch's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.finetune.dataset import PREDICT_ATTRIBUTE, Features, pad_inputs, predict_batch
from bert_repro.finetune.heads import ClassificationHead, SpanHead
from bert_repro.finetune.model import BertTaskModel
from bert_repro.finetune.trainer import dummy_inputs


def _features(tokenizer, n: int, seed: int) -> Features:
    rng = np.random.default_rng(seed)
    ids, types = [], []
    for _ in range(n):
        body = rng.integers(5, 90, size=int(rng.integers(1, 30)), dtype=np.int32)
        ids.append(np.concatenate([[tokenizer.cls_token_id], body, [tokenizer.sep_token_id]]))
        types.append(np.zeros(len(ids[-1]), np.int32))
    return Features(tuple(np.asarray(x, np.int32) for x in ids), tuple(types))


@pytest.mark.parametrize("head", ["classification", "span"])
def test_predict_batch_equals_predict_on_batch_with_one_trace(tiny_bert, head):
    encoder, tokenizer = tiny_bert
    layer = ClassificationHead(4) if head == "classification" else SpanHead()
    model = BertTaskModel(encoder, layer)
    model(dummy_inputs(tokenizer))
    feats = _features(tokenizer, 23, seed=1)
    for index in ([0, 1, 2, 3], [4, 5], list(range(6, 23)), [7]):  # other B and T each time
        inputs = pad_inputs(feats, index, pad_id=tokenizer.pad_token_id)
        got, want = predict_batch(model, inputs), model.predict_on_batch(inputs)
        if head == "span":
            assert sorted(got) == sorted(want) == ["end", "start"]
            for key in want:
                np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
        else:
            assert got.shape == want.shape == (len(index), 4)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    (function,) = getattr(model, PREDICT_ATTRIBUTE).values()
    assert function.experimental_get_tracing_count() == 1
    assert all(PREDICT_ATTRIBUTE not in w.name for w in model.weights)


def test_a_model_with_a_predict_function_is_freed(tiny_bert):
    import gc
    import weakref

    encoder, tokenizer = tiny_bert
    model = BertTaskModel(encoder, ClassificationHead(4))
    model(dummy_inputs(tokenizer))
    predict_batch(model, pad_inputs(_features(tokenizer, 3, seed=2), [0, 1, 2]))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None  # nothing outside the model keeps it (or its variables) alive
