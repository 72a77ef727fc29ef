"""Fine-tuning data: file readers, tensorflow-datasets loaders (mocked), encodings, SQuAD windows."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from bert_repro.errors import ConfigError, DataError
from bert_repro.finetune.agnews import AGNEWS_LABELS, read_agnews_csv
from bert_repro.finetune.classification import ClassificationExample, encode_classification
from bert_repro.finetune.mnli import MNLI_LABELS, read_mnli_tsv
from bert_repro.finetune.squad import (
    SquadExample,
    answer_token_span,
    make_squad_features,
    predict_answers,
    read_squad_json,
)
from bert_repro.finetune.squad_metrics import squad_scores
from bert_repro.finetune.tasks import load_task_data


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_bert_dir):
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(tiny_bert_dir))


# ----------------------------------------------------------------------------- file readers


def test_read_agnews_csv_with_and_without_header(tmp_path):
    rows = '3,"Wall St. Bears","Short-sellers, again."\n1,Title two,"Multi\nline"\n'
    plain = tmp_path / "plain.csv"
    plain.write_text(rows)
    headed = tmp_path / "headed.csv"
    headed.write_text("description,label,title\n" + '"Short-sellers, again.",3,"Wall St. Bears"\n')
    ex = read_agnews_csv(plain)
    assert [e.label for e in ex] == [2, 0]
    assert ex[0].text_a == "Wall St. Bears Short-sellers, again." and ex[0].text_b is None
    assert ex[1].text_a == "Title two Multi line"  # a line break inside a field is a space
    assert read_agnews_csv(headed)[0] == ClassificationExample(ex[0].text_a, None, 2, "line 2")
    bad = tmp_path / "bad.csv"
    bad.write_text("label,title,description\n2,a,b\n5,c,d\n")
    with pytest.raises(DataError, match=r"bad.csv:3: label '5'"):
        read_agnews_csv(bad)


@pytest.mark.integration
def test_read_the_shared_agnews_csv(shared_data):
    ex = read_agnews_csv(shared_data / "ag-news" / "test.csv")
    assert len(ex) == 7600
    assert np.bincount([e.label for e in ex]).tolist() == [1900] * len(AGNEWS_LABELS)


def test_read_mnli_tsv(tmp_path):
    header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    body = (
        '0\t1\t1e\tfiction\tA man "sleeps".\tSomeone rests.\tentailment\tentailment\n'
        "1\t2\t2n\tfiction\tA dog.\tA cat.\tcontradiction\t-\n"
        "2\t3\t3c\tfiction\tIt rains.\tIt is dry.\tcontradiction\tcontradiction\n"
    )
    path = tmp_path / "dev_matched.tsv"
    path.write_text(header + body)
    limit = csv.field_size_limit()
    ex = read_mnli_tsv(path)
    assert csv.field_size_limit() == limit  # library code leaves process-global settings alone
    assert [(e.text_a, e.text_b, e.label, e.id) for e in ex] == [
        ('A man "sleeps".', "Someone rests.", MNLI_LABELS.index("entailment"), "1e"),
        ("It rains.", "It is dry.", MNLI_LABELS.index("contradiction"), "3c"),
    ]
    path.write_text(header + body.replace("\tentailment\n", "\tmaybe\n"))
    with pytest.raises(DataError, match="dev_matched.tsv:2"):
        read_mnli_tsv(path)


def _squad_doc(qas, context="Denver Broncos won Super Bowl 50."):
    return {
        "version": "1.1",
        "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}],
    }


def test_read_squad_json(tmp_path):
    qa = {
        "id": "q1",
        "question": "Who won?",
        "answers": [{"text": "Denver Broncos", "answer_start": 0}],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_squad_doc([qa])))
    (ex,) = read_squad_json(path)
    assert ex == SquadExample(
        "q1", "Who won?", "Denver Broncos won Super Bowl 50.", ("Denver Broncos",), (0,), "t"
    )
    path.write_text(json.dumps(_squad_doc([{"id": "q2", "question": "?"}])))
    with pytest.raises(DataError, match=r"qas\[0\] is malformed"):
        read_squad_json(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_squad_json(path)


@pytest.mark.integration
def test_read_the_shared_squad_sample(shared_data):
    ex = read_squad_json(shared_data / "squad-sample" / "dev-v1.1-sample.json")
    assert len(ex) == 810 and len({e.id for e in ex}) == 810
    e = ex[0]
    assert e.context[e.answer_starts[0] :].startswith(e.answers[0])


def test_load_task_data_splits_a_file_by_seed(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("".join(f"{i % 4 + 1},title {i},text {i}\n" for i in range(50)))
    data = load_task_data("agnews", path, eval_fraction=0.2, seed=1)
    assert (len(data.train), len(data.eval)) == (40, 10)
    assert not {e.id for e in data.train} & {e.id for e in data.eval}
    assert data.source["n_eval"] == 10 and data.source["split_seed"] == 1
    same = load_task_data("agnews", path, eval_fraction=0.2, seed=1)
    assert [e.id for e in same.eval] == [e.id for e in data.eval]
    other = load_task_data("agnews", path, eval_fraction=0.2, seed=2)
    assert [e.id for e in other.eval] != [e.id for e in data.eval]
    small = load_task_data("agnews", path, eval_data=path, train_limit=7, eval_limit=3)
    assert (len(small.train), len(small.eval)) == (7, 3)
    assert small.source["train_limit"] == 7 and small.source["eval_limit"] == 3
    with pytest.warns(DeprecationWarning, match="max_train= is now train_limit="):
        old = load_task_data("agnews", path, eval_data=path, max_train=7, max_eval=3)
    assert [e.id for e in old.train] == [e.id for e in small.train]
    with pytest.raises(ConfigError, match="give train_limit= only"):
        load_task_data("agnews", path, max_train=7, train_limit=7)
    with pytest.raises(ConfigError):
        load_task_data("agnews", eval_data=path)


# ----------------------------------------------------------------------------- tfds (mocked)


@pytest.mark.parametrize(
    "task, n_labels", [("mnli", len(MNLI_LABELS)), ("agnews", len(AGNEWS_LABELS)), ("squad", None)]
)
def test_tfds_loaders_read_mocked_datasets(task, n_labels, tmp_path):
    """``tfds.testing.mock_data`` makes random records from the builders' feature specs, so the
    tfds code path (names, splits, fields) runs offline."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, data_dir=str(tmp_path)):
        data = load_task_data(task, seed=0)
    assert len(data.train) == 6 and len(data.eval) == 6
    assert data.source["tfds"] in ("glue/mnli", "ag_news_subset", "squad/v1.1")
    for ex in list(data.train) + list(data.eval):
        if n_labels is None:
            assert isinstance(ex.context, str) and isinstance(ex.question, str)
            assert len(ex.answers) == len(ex.answer_starts) >= 1
        else:
            assert isinstance(ex.text_a, str) and 0 <= ex.label < n_labels
            assert (ex.text_b is not None) == (task == "mnli")


# ----------------------------------------------------------------------------- encodings


def test_encode_classification_truncates_pairs_longest_first(tiny_tokenizer):
    long_a = " ".join(["dog"] * 40)
    ex = [
        ClassificationExample(long_a, "the cat", 1),
        ClassificationExample("a dog", "the bank", 0),
    ]
    feats, labels = encode_classification(tiny_tokenizer, ex, max_seq_length=16)
    assert labels.tolist() == [1, 0]
    ids0, types0 = feats.input_ids[0], feats.token_type_ids[0]
    assert len(ids0) == 16  # [CLS] a... [SEP] b [SEP], a cut first
    second = tiny_tokenizer.convert_ids_to_tokens(ids0[types0 == 1].tolist())
    assert second == tiny_tokenizer.tokenize("the cat") + ["[SEP]"]
    assert feats.lengths.tolist()[1] == len(tiny_tokenizer("a dog", "the bank")["input_ids"])
    with pytest.raises(DataError, match="mix"):
        encode_classification(tiny_tokenizer, [ex[0], ClassificationExample("a", None, 0)], 16)


@pytest.fixture(scope="module")
def squad_sample(shared_data):
    return read_squad_json(shared_data / "squad-sample" / "dev-v1.1-sample.json")[:120]


@pytest.mark.integration
def test_squad_windows_label_the_answer_tokens(tiny_tokenizer, squad_sample):
    kw = dict(max_seq_length=64, doc_stride=24, max_query_length=20)
    train = make_squad_features(tiny_tokenizer, squad_sample, training=True, **kw)
    evals = make_squad_features(tiny_tokenizer, squad_sample, training=False, **kw)
    assert train.skipped == () and len(train) == len(evals)
    assert np.array_equal(train.example_index, evals.example_index)
    cls, sep = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    found = set()
    for f in range(len(train)):
        ids, types = train.features.input_ids[f], train.features.token_type_ids[f]
        assert len(ids) <= 64 and ids[0] == cls and ids[-1] == sep
        assert np.all(np.diff(types) >= 0) and types[-1] == 1
        start, end = train.start_positions[f], train.end_positions[f]
        if start == 0:
            assert end == 0
            continue
        ex = squad_sample[train.example_index[f]]
        off = evals.offsets[f]
        # the labelled tokens are exactly the answer's tokens (up to whole-word boundaries)
        assert ex.answers[0] in ex.context[off[start, 0] : off[end, 1]]
        assert types[start] == 1 and types[end] == 1 and start <= end
        found.add(int(train.example_index[f]))
    # every answer short enough to fit in the overlap of two windows is labelled somewhere
    must = set()
    for k, ex in enumerate(squad_sample):
        enc = tiny_tokenizer(ex.context, add_special_tokens=False, return_offsets_mapping=True)
        first, last = answer_token_span(
            np.asarray(enc["offset_mapping"]),
            ex.answer_starts[0],
            ex.answer_starts[0] + len(ex.answers[0]),
        )
        window = 64 - min(20, len(tiny_tokenizer.tokenize(ex.question))) - 3
        if last - first + 1 <= window - min(window, 24) + 1:
            must.add(k)
    assert len(must) > 100 and must <= found


@pytest.mark.integration
def test_squad_decoding_recovers_gold_answers_from_oracle_logits(tiny_tokenizer, squad_sample):
    """Logits that peak on the gold tokens in every window holding the whole answer decode to
    the gold answer (windows long enough for every answer: the decoding is what is tested)."""
    feats = make_squad_features(
        tiny_tokenizer,
        squad_sample,
        training=False,
        max_seq_length=256,
        doc_stride=64,
        max_query_length=20,
    )
    starts, ends = [], []
    for f, k in enumerate(feats.example_index):
        ex = squad_sample[k]
        off = feats.offsets[f]
        s = np.full(len(off), -10.0)
        e = s.copy()
        a, b = ex.answer_starts[0], ex.answer_starts[0] + len(ex.answers[0])
        span = answer_token_span(off, a, b)
        if span is not None and off[span[0], 0] <= a and off[span[1], 1] >= b:
            s[span[0]] += 20
            e[span[1]] += 20
        starts.append(s)
        ends.append(e)
    answers = predict_answers(squad_sample, feats, starts, ends, max_answer_length=256)
    scores = squad_scores(answers, {ex.id: ex.answers for ex in squad_sample})
    assert scores["exact_match"] >= 98.0
    # the only misses are answers that end inside a wordpiece-level word ("2" of "2½", where
    # "2½" is one [UNK]): the predicted span then holds the gold answer
    for ex in squad_sample:
        if answers[ex.id] not in ex.answers:
            assert ex.answers[0] in answers[ex.id], (answers[ex.id], ex.answers)
