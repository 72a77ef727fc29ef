"""Over-long inputs (issue 8): texts and sentences beyond the model's maximum length fail with an
error naming the item (or are skipped on request) in every entry point; never a raw TF error
(position embeddings out of range) and never a silent cut. The tiny BERT accepts 64 wordpieces
([CLS] and [SEP] included)."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.cli import main
from bert_repro.errors import DataError, InputTooLongError, ModelError

FITS = " ".join(["a"] * 62)  # 62 pieces + [CLS] + [SEP] = 64: exactly the limit
LONG = " ".join(["a"] * 63)  # 65 pieces
TEXTS = ["the dog", LONG, "a good day"]
SENTENCES = [["the", "dog"], LONG.split(), ["no"]]


def test_the_limit_itself_fits(tiny_bert):
    from bert_repro.features import hidden_states, word_features

    model, tok = tiny_bert
    (h,) = hidden_states(model, tok, [FITS], progress=False)
    assert h.shape[1] == 64
    (w,) = word_features(model, tok, [FITS.split()], progress=False)
    assert w.shape[1] == 62


@pytest.mark.parametrize("entry", ["hidden_states", "iter_batches", "word_features"])
def test_feature_functions_name_the_item(tiny_bert, entry):
    import bert_repro.features as features

    model, tok = tiny_bert
    data = SENTENCES if entry == "word_features" else TEXTS
    what = "sentence" if entry == "word_features" else "text"
    with pytest.raises(InputTooLongError, match=rf"{what} 1 .* 65 wordpieces .* maximum of 64"):
        result = getattr(features, entry)(model, tok, data, progress=False)
        list(result)


def test_cache_refuses_before_writing_an_entry(tiny_bert, tmp_path):
    from bert_repro.cache import cached_word_features

    model, tok = tiny_bert
    with pytest.raises(InputTooLongError, match="sentence 1"):
        cached_word_features(model, tok, SENTENCES, tmp_path, progress=False)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_comparator_errors_or_skips(tiny_bert):
    from bert_repro.plot import BertComparator

    model, tok = tiny_bert
    comparator = BertComparator(model, model, tok, progress=False)
    with pytest.raises(InputTooLongError, match="text 1"):
        comparator.compare(TEXTS, sample_tokens=0)
    with pytest.warns(UserWarning, match="skipping 1 of 3"):
        result = comparator.compare(TEXTS, sample_tokens=4, too_long="skip")
    assert result.n_skipped_too_long == 1 and result.n_texts == 2
    np.testing.assert_allclose(result.cosine, 1.0, atol=1e-5)
    with pytest.raises(DataError, match="all 1 texts are longer"), pytest.warns(UserWarning):
        comparator.compare([LONG], too_long="skip")


def long_treebank(folder):
    rows = [f"{i}\ta\ta\tDET\tDT\t_\t{0 if i == 1 else 1}\tdep\t_\t_" for i in range(1, 64)]
    path = folder / "long.conllu"
    path.write_text(
        "# sent_id = short\n1\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n\n"
        "# sent_id = very-long\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    return path


def test_probe_dataset_names_file_line_and_sent_id(tiny_bert, tmp_path):
    from bert_repro.probe.data import ProbeDataset

    model, tok = tiny_bert
    path = long_treebank(tmp_path)
    ds = ProbeDataset(path, cache_dir=tmp_path / "cache")
    assert ds.too_long(model, tok) == [1]
    with pytest.raises(InputTooLongError) as info:
        ds.features(model, tok, progress=False)
    err = info.value
    assert err.path == str(path) and err.line == 4 and "very-long" in err.reason
    assert "65 wordpieces" in err.reason and "--too-long skip" in err.reason
    store = ds.subset([0]).features(model, tok, progress=False)  # the fitting part works
    assert len(store) == 1


def test_embeddings_functions(tiny_bert):
    from bert_repro import embeddings as emb

    model, tok = tiny_bert
    calls = [
        lambda: emb.word_occurrences(model, tok, TEXTS, "dog"),
        lambda: emb.corpus_word_vectors(model, tok, TEXTS),
        lambda: emb.sentence_features(model, tok, TEXTS),
        lambda: emb.sentence_vectors(model, tok, TEXTS, "mean"),
        lambda: emb.sentence_similarity(model, tok, TEXTS),
        lambda: emb.occurrence_similarity(model, tok, TEXTS, "dog"),
    ]
    for call in calls:
        with pytest.raises(InputTooLongError, match="text 1"):
            call()
    with pytest.raises(DataError, match="65 wordpieces, but the model has 64 positions"):
        emb.decompose_text(model, tok, LONG)
    with pytest.raises(DataError, match="positions"):
        emb.decompose_text(model, tok, FITS, "dog")  # the pair makes it too long


def test_classifier_cuts_only_when_asked(tiny_bert):
    from bert_repro.embeddings import LabeledTexts, classify_study, truncate_texts

    model, tok = tiny_bert
    # 14 and 7 texts: enough per label for the test and validation splits (checked first)
    data = LabeledTexts(tuple(TEXTS * 7), np.array([0, 1, 0] * 7), ("x", "y"))
    with pytest.raises(InputTooLongError, match="text 1"):
        classify_study(model, tok, data, max_length=None, epochs=1)
    with pytest.raises(InputTooLongError):  # a cut longer than the model is still refused
        classify_study(model, tok, data, max_length=100, epochs=1)
    cut, n = truncate_texts(tok, TEXTS, 64)
    assert n == 1 and len(tok(cut[1])["input_ids"]) == 64


def test_norms_study_names_the_definition(tiny_bert, tmp_path):
    from bert_repro.embeddings import norms_study, read_word_definitions

    model, tok = tiny_bert
    path = tmp_path / "w.csv"
    path.write_text(f"word,definition\ndog,a pet\ncat,{LONG}\n", encoding="utf-8")
    with pytest.raises(InputTooLongError, match="text 1"):
        norms_study(model, tok, read_word_definitions(path))


def test_a_tokenizer_bigger_than_the_model_is_refused_before_tf(tiny_bert):
    """Ids beyond the model's vocabulary used to reach the embedding lookup (a raw TF error)."""
    from transformers import BertTokenizerFast

    from bert_repro.features import hidden_states, word_features
    from bert_repro.models import default_model_path

    model, _ = tiny_bert
    big = BertTokenizerFast.from_pretrained(str(default_model_path()))
    with pytest.raises(ModelError, match="do not belong together"):
        word_features(model, big, [["zebra", "quantum"]], progress=False)
    with pytest.raises(ModelError, match="do not belong together"):
        hidden_states(model, big, ["zebra quantum"], progress=False)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_commands_report_long_inputs_in_one_line(tiny_bert_dir, tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    code = main(
        ["compare", "--base", str(tiny_bert_dir), "--finetuned", f"x={tiny_bert_dir}"]
        + ["--texts", f"txt:{texts}", "--out", str(tmp_path / "c"), "--quiet"]
    )
    assert code == 2 and "text 1" in one_error_line(capsys)
    with pytest.warns(UserWarning, match="skipping 1 of 3"):
        code = main(
            ["compare", "--base", str(tiny_bert_dir), "--finetuned", f"x={tiny_bert_dir}"]
            + ["--texts", f"txt:{texts}", "--out", str(tmp_path / "c"), "--no-png"]
            + ["--too-long", "skip", "--sample-tokens", "4"]
        )
    assert code == 0
    assert "1 skipped (too long)" in capsys.readouterr().out
    tb = long_treebank(tmp_path)
    code = main(
        ["probe", "train", "--model", f"tiny={tiny_bert_dir}", "--train", str(tb), "--dev", str(tb)]
        + ["--out", str(tmp_path / "p"), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    )
    line = one_error_line(capsys)
    assert code == 2 and f"{tb}:4: sentence very-long has 65 wordpieces" in line
    for argv in (
        ["similarity", "--text", "the dog", "--text", LONG, "--sentence", "mean"],
        ["decompose", "--text", LONG],
    ):
        code = main(
            ["embeddings", *argv, "--model", str(tiny_bert_dir), "--out", str(tmp_path / "e")]
        )
        assert code == 2 and ("text 1" in (line := one_error_line(capsys)) or "64" in line)
