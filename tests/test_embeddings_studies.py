"""Norms study, input-embedding split and frozen-feature classifier on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.embeddings import (
    build_head,
    classify_study,
    decompose_study,
    decompose_text,
    describe_norms,
    embedding_weights,
    evaluate_head,
    input_embedding_parts,
    layer_norm,
    max_abs_difference,
    norms_study,
    read_labeled_csv,
    read_word_definitions,
    stratified_split,
    train_head,
    truncate_texts,
)
from bert_repro.errors import ConfigError, DataError
from bert_repro.features import hidden_states

WORDS_CSV = (
    "words,pos,definition\n"
    "dog,n,a man's good friend\n"
    "bank,n,the land by the river\n"
    "code,n,a text that a program can run\n"
)


@pytest.fixture
def words_csv(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text(WORDS_CSV)
    return path


# ------------------------------------------------------------------------------ norms


def test_norms_study_matches_explicit(tiny_bert, words_csv):
    model, tok = tiny_bert
    table = read_word_definitions(words_csv)
    assert table["word"].tolist() == ["dog", "bank", "code"] and "pos" in table
    norms = norms_study(model, tok, table, max_batch=2)
    weight = model.bert.embeddings.weight.numpy()
    for _, row in norms.table.iterrows():
        token_id = tok.convert_tokens_to_ids(row["word"])
        assert row["norm_embedding"] == pytest.approx(np.linalg.norm(weight[token_id]), rel=1e-5)
        out = model(**tok(row["definition"], return_tensors="tf"))
        mean = out.last_hidden_state.numpy()[0].mean(0)
        assert row["norm_hidden"] == pytest.approx(np.linalg.norm(mean), rel=1e-4)
        pooled = out.pooler_output.numpy()[0]
        assert row["norm_pooler"] == pytest.approx(np.linalg.norm(pooled), rel=1e-4)
    summary = describe_norms(norms)
    assert list(summary.columns) == ["norm_embedding", "norm_hidden", "norm_pooler"]
    assert summary.loc["count"].tolist() == [3, 3, 3]


def test_norms_bad_input(tiny_bert, tmp_path):
    model, tok = tiny_bert
    bad = tmp_path / "bad.csv"
    bad.write_text("lemma,gloss\ndog,a friend\n")
    with pytest.raises(DataError, match="'word' \\(or 'words'\\) and 'definition'"):
        read_word_definitions(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("word,definition\n")
    with pytest.raises(DataError, match="no rows"):
        read_word_definitions(empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("word,definition\ndog,\n")
    with pytest.raises(DataError, match=r"blank.csv:2: blank definition"):
        read_word_definitions(blank)
    with pytest.raises(DataError, match="no such file"):
        read_word_definitions(tmp_path / "missing.csv")
    multi = tmp_path / "multi.csv"
    multi.write_text("word,definition\ndog,a friend\nzebra,a striped horse\n")
    with pytest.raises(DataError, match=r"line 3: 'zebra'"):
        norms_study(model, tok, read_word_definitions(multi))


# -------------------------------------------------------------------------- decompose


def test_decomposition_reproduces_hidden_state_0(tiny_bert):
    model, tok = tiny_bert
    text = "the dog said no to the river bank"
    parts = decompose_text(model, tok, text)
    h0 = hidden_states(model, tok, [text], layers=[0], progress=False)[0][0]
    assert max_abs_difference(parts, h0) < 1e-5
    np.testing.assert_allclose(parts.sum, parts.token + parts.segment + parts.position)
    w = embedding_weights(model)
    ids = tok(text)["input_ids"]
    np.testing.assert_array_equal(parts.token, w["word"][ids])
    np.testing.assert_array_equal(parts.position, w["position"][: len(ids)])
    assert not np.allclose(w["gamma"], 1.0)  # the fixture's LayerNorm is not the identity
    assert parts.tokens[0] == "[CLS]" and parts.tokens[-1] == "[SEP]"


def test_decomposition_with_two_segments(tiny_bert):
    model, tok = tiny_bert
    parts = decompose_text(model, tok, "what do you do", "i code")
    enc = tok("what do you do", "i code", return_tensors="tf")
    h0 = model(**enc, output_hidden_states=True).hidden_states[0].numpy()[0]
    assert max_abs_difference(parts, h0) < 1e-5
    w = embedding_weights(model)
    np.testing.assert_array_equal(parts.segment[-1], w["type"][1])


def test_layer_norm_formula_and_bad_ids():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    y = layer_norm(x, np.ones(4), np.zeros(4), 0.0)
    np.testing.assert_allclose(y.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(), 1.0)
    w = {
        "word": np.eye(4),
        "type": np.zeros((2, 4)),
        "position": np.zeros((3, 4)),
        "gamma": np.ones(4),
        "beta": np.zeros(4),
        "eps": 1e-12,
    }
    with pytest.raises(DataError, match="wordpiece id"):
        input_embedding_parts(w, [0, 9])
    with pytest.raises(DataError, match="positions"):
        input_embedding_parts(w, [0, 1, 2, 3])
    with pytest.raises(DataError, match="segment id"):
        input_embedding_parts(w, [0, 1], [0, 2])


# ------------------------------------------------------------------------- classifier


def blobs(n_per_class=60, classes=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(classes, dim))
    x = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(classes), n_per_class)
    return x.astype(np.float32), y


def test_linear_head_beats_chance_on_separable_data():
    x, y = blobs()
    train, test = stratified_split(y, 0.25, seed=0)
    head, history = train_head(x[train], y[train], 4, epochs=40, learning_rate=0.01, seed=0)
    res = evaluate_head(head, x[test], y[test], ["a", "b", "c", "d"])
    assert res["accuracy"] > 0.9  # chance is 0.25
    assert set(res["per_class"]) == {"a", "b", "c", "d"}
    assert np.sum(res["confusion"]) == len(test)
    assert "val_loss" in history
    # a real Keras object: the config round-trips
    clone = type(head).from_config(head.get_config())
    assert clone.count_params() == head.count_params()


def test_stratified_split_is_seeded_and_stratified():
    y = np.repeat([0, 1, 2], [10, 20, 30])
    a = stratified_split(y, 0.2, seed=1)
    b = stratified_split(y, 0.2, seed=1)
    np.testing.assert_array_equal(a[1], b[1])
    assert np.bincount(y[a[1]]).tolist() == [2, 4, 6]
    assert sorted(np.concatenate(a).tolist()) == list(range(60))
    with pytest.raises(ConfigError):
        stratified_split(y, 1.5)


def test_head_config_with_hidden_layer():
    head = build_head(8, 3, hidden_units=5, dropout=0.1, mean=np.zeros(8), variance=np.ones(8))
    assert head.output_shape == (None, 3)
    assert [layer.name for layer in head.layers][-1] == "logits"


def test_classify_study_on_tiny_bert(tiny_bert, tmp_path):
    model, tok = tiny_bert
    rng = np.random.default_rng(0)
    topics = {1: "dog cat man woman day", 2: "bank money code program debug"}
    lines = ["label,title,description"]
    for i in range(120):
        label = 1 + i % 2
        words = rng.choice(topics[label].split(), size=4).tolist()
        lines.append(f"{label},{' '.join(words[:2])},{' '.join(words[2:])} the")
    path = tmp_path / "news.csv"
    path.write_text("\n".join(lines) + "\n")
    data = read_labeled_csv(path)  # an AG News layout: World and Sports present
    assert data.class_names == ("World", "Sports") and len(data) == 120
    assert data.written[:2] == ("1", "2") and data.lines[:2] == (2, 3)
    study = classify_study(
        model, tok, data, recipe=0, epochs=60, learning_rate=0.01, max_length=16, progress=False
    )
    assert study.n_test == 24 and study.n_train == 96
    assert study.results["mean"]["accuracy"] > 0.8  # chance 0.5
    # The embedding output's [CLS] row is the same for every text: no information at all.
    assert study.results["cls"]["accuracy"] == pytest.approx(0.5)
    assert study.best() == "mean" and study.settings["recipe"] == 0
    assert list(study.to_frame().index) == ["cls", "mean"]
    written = study.save(tmp_path / "out", png=False, note="test")
    names = {p.name for p in written}
    assert {"results.json", "results.csv", "confusion_mean.html", "training.html"} <= names
    assert (tmp_path / "out" / "figures" / "training.html").is_file()


def test_labeled_csv_ag_news_layout_and_errors(tmp_path):
    path = tmp_path / "ag.csv"
    path.write_text(
        'label,title,description\n3,Title one,"Body\\\\one, two"\n1,T,B\n2,T,B\n4,T,B\n'
    )
    data = read_labeled_csv(path)
    assert data.class_names == ("World", "Sports", "Business", "Sci/Tech")
    assert data.labels.tolist() == [2, 0, 1, 3]
    assert data.texts[0] == "Title one Body one, two"
    bad = tmp_path / "bad.csv"
    bad.write_text("category,text\n1,hello\n")
    with pytest.raises(DataError, match="'label'"):
        read_labeled_csv(bad)
    one = tmp_path / "one.csv"
    one.write_text("label,text\n1,a\n1,b\n")
    with pytest.raises(DataError, match="one class"):
        read_labeled_csv(one)


def test_truncate_texts_keeps_leading_pieces(tiny_bert):
    _, tok = tiny_bert
    texts = ["the dog said no", "the dog said no to the man and the woman at night"]
    cut, n = truncate_texts(tok, texts, 8)
    assert n == 1 and cut[0] == texts[0]
    ids = tok(cut[1])["input_ids"]
    assert len(ids) == 8
    assert ids[1:-1] == tok(texts[1])["input_ids"][1:7]


# ------------------------------------------------------------- settings, results, distribute

TEXTS = ["the dog and the cat", "code code python", "a man at the bank of the river"]


def test_norms_and_decomposition_results_save_themselves(tiny_bert, words_csv, tmp_path):
    model, tok = tiny_bert
    norms = norms_study(model, tok, words_csv, progress=False)
    assert len(norms) == 3 and norms.settings["extraction"]["max_tokens"] > 0
    names = {p.name for p in norms.save(tmp_path / "norms", png=False, run="test")}
    assert names == {"results.json", "results.csv", "norms_describe.csv", "norms.html"}
    assert norms.summary()[0].split() == ["norm_embedding", "norm_hidden", "norm_pooler"]

    result = decompose_study(model, tok, "the dog", "i code", progress=False)
    assert result.max_abs_difference < 1e-5 and result.parts.tokens[0] == "[CLS]"
    single = decompose_study(model, tok, "the dog", progress=False)
    np.testing.assert_allclose(
        single.hidden_state_0, hidden_states(model, tok, ["the dog"], progress=False)[0][0]
    )
    frame = single.to_frame()
    assert list(frame["token"]) == list(single.parts.tokens) and "norm_output" in frame
    names = {p.name for p in single.save(tmp_path / "dec", png=False)}
    assert names == {"results.json", "results.csv", "decompose.html"}
    with pytest.raises(DataError, match="text_pair to decompose must be a non-blank"):
        decompose_study(model, tok, "the dog", " ")


def test_extraction_options_pass_through_and_recipes_are_not_strategies(tiny_bert):
    from bert_repro.embeddings import sentence_features, word_occurrences
    from bert_repro.settings import ExtractionSettings

    model, tok = tiny_bert
    base = sentence_features(model, tok, TEXTS, ("mean",), progress=False)["mean"]
    small = sentence_features(model, tok, TEXTS, ("mean",), max_batch=1, max_tokens=64)["mean"]
    np.testing.assert_allclose(base, small, atol=1e-5)
    settings = ExtractionSettings(max_batch=2, progress=False)
    given = sentence_features(model, tok, TEXTS, ("mean",), settings=settings)["mean"]
    np.testing.assert_allclose(base, given, atol=1e-5)
    with pytest.warns(DeprecationWarning, match="batch_size= is now max_batch="):
        sentence_features(model, tok, TEXTS, ("mean",), batch_size=2, progress=False)
    with pytest.raises(ConfigError, match="recipe='sum_last4'; strategy= is a tf.distribute"):
        sentence_features(model, tok, TEXTS, strategy="sum_last4")
    with pytest.raises(ConfigError, match="recipe= picks the hidden states"):
        word_occurrences(model, tok, TEXTS, "the", layers=[0])
    with pytest.raises(ConfigError, match="unknown extraction option 'batch'"):
        word_occurrences(model, tok, TEXTS, "the", batch=2)


def test_a_study_under_a_distribute_strategy_gives_the_same_numbers(tiny_bert, tiny_bert_dir):
    import tensorflow as tf

    from bert_repro.embeddings import similarity_study
    from bert_repro.models import load_bert

    model, tok = tiny_bert
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    in_scope, _ = load_bert(tiny_bert_dir, strategy=strategy)
    words = ["the", "code"]
    plain = similarity_study(model, tok, TEXTS, words, recipe="sum_all", progress=False)
    spread = similarity_study(
        in_scope, tok, TEXTS, words, recipe="sum_all", strategy=strategy, max_batch=2,
        progress=False,
    )  # fmt: skip
    assert spread.settings["extraction"]["strategy"] == "OneDeviceStrategy"
    assert plain.settings["extraction"]["strategy"] is None
    for word in words:
        np.testing.assert_allclose(
            spread.occurrences[word].vectors, plain.occurrences[word].vectors, atol=1e-5
        )
        np.testing.assert_allclose(
            spread.word_similarity[word], plain.word_similarity[word], atol=1e-5
        )
    assert set(spread.sentences) == {"cls", "mean", "pooler"}
    for how, matrix in plain.sentences.items():
        np.testing.assert_allclose(spread.sentences[how], matrix, atol=1e-5)
    assert spread.occurrences["the"].recipe == "sum_all" and len(spread.occurrences["the"]) == 4
