"""Shared fixtures: a tiny random BERT saved as a real model folder, the shipped MiniLM, data."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Words the tiny vocabulary holds whole; anything else falls back to letters/##letters.
TINY_WORDS = (
    "the a an of to and in is it that was he she they we you i for on with as at by this be "
    "are from or have not but had his her their what all were when there can one which do "
    "said new who will would more no if out so up time code coding python program debug "
    "dog dogs cat bank river money good bad day night man woman word words sentence text "
    "##s ##ing ##ed ##er ##ly"
).split()


def tiny_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    seen, vocab = set(), []
    for tok in specials + chars + pieces + TINY_WORDS:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


def build_tiny_bert(
    folder: Path,
    *,
    seed: int = 0,
    num_layers: int = 2,
    hidden: int = 32,
    max_positions: int = 64,
    safetensors: bool = False,
) -> Path:
    """Save a randomly initialised BERT and its fast tokenizer into ``folder``: TF weights
    (``tf_model.h5``), or ``model.safetensors`` with ``safetensors=True``."""
    import tensorflow as tf
    from transformers import BertConfig, BertTokenizerFast, TFBertModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
    )
    tf.random.set_seed(seed)
    model = TFBertModel(config)
    model(model.dummy_inputs)
    # Random init gives LayerNorm gamma=1, beta=0; perturb them so tests see their effect.
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "LayerNorm" in w.name:
            w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype(np.float32))
    model.save_pretrained(folder, safe_serialization=safetensors)
    BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    from bert_repro.models import load_bert

    return load_bert(tiny_bert_dir)


@pytest.fixture(scope="session")
def minilm():
    from bert_repro.models import load_bert

    return load_bert()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder, found as the package finds it (``$BERT_REPRO_DATA``, else
    ``../shared/data``; CI puts ``../shared`` beside the repository)."""
    from bert_repro.data import shared_data_dir
    from bert_repro.errors import DataError

    try:
        return shared_data_dir()
    except DataError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def ewt_dev(shared_data) -> Path:
    return shared_data / "ud-english-ewt" / "en_ewt-ud-dev.conllu"


@pytest.fixture(scope="session")
def ewt_dev_sentences(ewt_dev) -> list[list[str]]:
    """Word lists of the EWT dev sentences (syntactic words only), read with the conllu library."""
    import conllu

    with open(ewt_dev, encoding="utf-8") as f:
        return [
            [tok["form"] for tok in sent if isinstance(tok["id"], int)]
            for sent in conllu.parse_incr(f)
        ]


#: Sentences of the cache tests: repeated, of several lengths, one of a single word.
CACHE_SENTENCES = [
    ["the", "dog", "is", "good"],
    ["coding", "python", "code", ",", "debugging", "!"],
    ["a"],
    ["the", "bank", "of", "the", "river", "had", "money"],
    ["we", "said", "no"],
] * 3


def run_result_job(code: str, cwd: Path, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh Python process (e.g. one that must set up logical devices before
    TensorFlow starts) and return the JSON it prints after ``RESULT ``; fail with its stderr."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.split(" ", 1)[1])
