"""Mixed precision on the extraction path (the GPU settings, run on the CPU here)."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.errors import ConfigError
from bert_repro.features import hidden_states, word_features
from bert_repro.models import load_bert, model_fingerprint, model_precision

TEXTS = ["the dog is good", "a", "the bank of the river had money and the man said no"]
# Relative error of half-precision compute over two tiny layers: float16 has 11 bits of
# mantissa, bfloat16 8.
TOLERANCE = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_gives_float32_outputs_close_to_float32(
    tiny_bert, tiny_bert_dir, precision
):
    import tf_keras

    ref_model, tok = tiny_bert
    before = tf_keras.mixed_precision.global_policy().name
    model, _ = load_bert(tiny_bert_dir, precision=precision)
    assert tf_keras.mixed_precision.global_policy().name == before  # the caller's, untouched
    assert model_precision(model) == precision and model_precision(ref_model) == "float32"
    # Same weights, other numbers: a feature cache must not mix them up.
    assert model_fingerprint(model) != model_fingerprint(ref_model)

    ref = hidden_states(ref_model, tok, TEXTS, progress=False)
    for jit in (False, True):
        got = hidden_states(model, tok, TEXTS, jit_compile=jit, progress=False)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == np.float32 and g.shape == r.shape
            assert relative_error(g, r) < TOLERANCE[precision]
            assert relative_error(g, r) > 0  # it really computed in half precision
    sents = [t.split() for t in TEXTS]
    ref_w = word_features(ref_model, tok, sents, progress=False)
    for g, r in zip(word_features(model, tok, sents, progress=False), ref_w, strict=True):
        assert g.dtype == np.float32 and relative_error(g, r) < TOLERANCE[precision]


def test_unknown_precision_lists_the_valid_ones(tiny_bert_dir):
    with pytest.raises(ConfigError, match="mixed_bfloat16"):
        load_bert(tiny_bert_dir, precision="fp8")
