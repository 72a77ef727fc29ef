"""Model loading: folders (TF h5, TF and PyTorch safetensors), the offline default, clear errors."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

from bert_repro.errors import ModelError
from bert_repro.models import (
    check_compatible,
    hub_reachable,
    load_bert,
    model_config,
    model_dims,
    model_fingerprint,
)

#: Seconds an unreachable hub may cost (the hub client's own retries took 25-33 s here).
FAST = 10.0


def test_tiny_folder_loads_with_all_hidden_states(tiny_bert):
    model, tok = tiny_bert
    assert model.config.output_hidden_states
    assert tok.is_fast
    assert model_dims(model) == (2, 32)
    out = model(**tok(["the dog"], return_tensors="tf"))
    assert len(out.hidden_states) == 3


def test_tf_safetensors_folder_round_trips(tiny_bert, tmp_path):
    model, tok = tiny_bert
    model.save_pretrained(tmp_path, safe_serialization=True)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    again, _ = load_bert(tmp_path)
    assert model_fingerprint(again) == model_fingerprint(model)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_bert(tmp_path / "nope")


def test_folder_without_weights_names_what_it_found(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match="never loaded"):
        load_bert(tmp_path)


def _warm_imports() -> None:
    """Import TensorFlow and transformers before timing (seconds of import, not of the hub)."""
    from transformers import BertConfig, TFBertModel  # noqa: F401


def test_hub_name_offline_says_how_to_pass_a_folder_at_once(monkeypatch):
    """HF_HUB_OFFLINE set after transformers was imported (as in a notebook) is obeyed."""
    _warm_imports()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelError, match="pass the folder"):
        load_bert("bert-base-uncased-does-not-exist")
    with pytest.raises(ModelError, match="hub unreachable"):
        model_config("bert-base-uncased-does-not-exist")
    assert time.monotonic() - start < FAST


def _hub_answers() -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError:
        return False
    return True


def test_hub_name_with_no_network_fails_fast(monkeypatch):
    """Real, not mocked: skipped on a machine that reaches the hub."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    if _hub_answers():
        pytest.skip("huggingface.co answers from here: nothing to time")
    _warm_imports()
    environ = dict(os.environ)
    start = time.monotonic()
    with pytest.raises(ModelError, match="pass the folder"):
        load_bert("bert-base-uncased")
    with pytest.raises(ModelError, match="hub unreachable"):
        model_config("bert-base-uncased")
    assert time.monotonic() - start < FAST
    assert dict(os.environ) == environ  # nothing changed behind the caller's back


@pytest.fixture()
def no_proxy_env(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_hub_reachable_tries_the_configured_endpoint(no_proxy_env):
    """A local listening socket stands in for the hub; a closed port for an unreachable one."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        no_proxy_env.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub_reachable(timeout=2)
    start = time.monotonic()
    assert not hub_reachable(timeout=2)
    assert time.monotonic() - start < 2.5
    no_proxy_env.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable(timeout=2)


def test_incompatible_models_are_refused(tiny_bert, tmp_path):
    from conftest import build_tiny_bert

    other, _ = load_bert(build_tiny_bert(tmp_path / "three", num_layers=3))
    with pytest.raises(ModelError, match="num_hidden_layers"):
        check_compatible(tiny_bert[0], [other], names=["three-layer"])


def test_fingerprint_changes_with_weights(tiny_bert_dir):
    model, _ = load_bert(tiny_bert_dir)
    before = model_fingerprint(model)
    w = next(v for v in model.weights if "layer_._1/output/dense/bias" in v.name)
    w.assign(w.numpy() + np.float32(1e-3))
    assert model_fingerprint(model) != before


@pytest.mark.integration
def test_offline_default_is_minilm_from_pytorch_safetensors(minilm):
    model, tok = minilm
    assert model_dims(model) == (6, 384)
    assert model.config.vocab_size == 30522 == len(tok)
    assert tok.model_max_length == 512


def test_tokenizer_fingerprint_ignores_truncation_state(tiny_bert_dir, tmp_path):
    """Fine-tuning calls the tokenizer with truncation, which changes the backend's state and
    what save_pretrained writes, not a wordpiece: the fingerprint stays (it keys the cache
    and the comparator's same-tokenizer check)."""
    from transformers import BertTokenizerFast

    from bert_repro.models import tokenizer_fingerprint

    tok = BertTokenizerFast.from_pretrained(tiny_bert_dir)
    before = tokenizer_fingerprint(tok)
    tok(["the dog"] * 2, truncation=True, max_length=8, padding="max_length")
    assert tok.backend_tokenizer.truncation is not None
    tok.save_pretrained(tmp_path / "saved")
    assert tokenizer_fingerprint(tok) == before
    assert tokenizer_fingerprint(BertTokenizerFast.from_pretrained(tmp_path / "saved")) == before
    other = BertTokenizerFast.from_pretrained(tiny_bert_dir, do_lower_case=False)
    assert tokenizer_fingerprint(other) != before  # a real difference still counts
