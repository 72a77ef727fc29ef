"""The one AG News reader and its cleaning rule, shared by fine-tuning and the embeddings
classifier: CSV files with and without a header, tensorflow-datasets (mocked), the real file."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.agnews import (
    AGNEWS_LABELS,
    agnews_text,
    clean_agnews_text,
    load_agnews_tfds,
    read_agnews_csv,
)
from bert_repro.embeddings import LabeledTexts, read_labeled_csv
from bert_repro.errors import ConfigError, DataError
from bert_repro.finetune.agnews import read_agnews_csv as read_agnews_examples

# (as stored in the file, after cleaning); the stored forms are from the real test split.
CLEANING = [
    (
        r"Wall Street's dwindling\band of ultra-cynics",
        "Wall Street's dwindling band of ultra-cynics",
    ),
    (r"A second\team of rocketeers", "A second team of rocketeers"),
    # a bare backslash is the line break, so \n before a word is not a newline escape
    (r"and gave\no indication", "and gave no indication"),
    (r"for social\network and", "for social network and"),
    (r"Five Sources\\A9, the search engine", "Five Sources A9, the search engine"),  # paragraph
    (r"After its \$160 million deal", "After its $160 million deal"),
    # numeric references whose "&" became a space
    ("the  #36;10 million Ansari X Prize", "the $10 million Ansari X Prize"),
    ("it doesn #39;t", "it doesn't"),
    ("them  #151; on", "them \u2014 on"),  # Windows-1252 em dash, as HTML5 reads it
    ("threat #151;pro", "threat\u2014pro"),
    ("Texas Instruments Inc. &lt;TXN.N&gt;, AT&amp;T", "Texas Instruments Inc. <TXN.N>, AT&T"),
    ('said:\\\\"Not only', 'said: "Not only'),
    ("ends with a break.\\", "ends with a break."),
    ("  spaced\n out\ttext  ", "spaced out text"),
    ("Room #12 is fine", "Room #12 is fine"),  # a '#' that is not a character reference
    ("", ""),
]


@pytest.mark.parametrize(("stored", "clean"), CLEANING)
def test_cleaning_rule(stored, clean):
    assert clean_agnews_text(stored) == clean
    assert clean_agnews_text(clean) == clean  # idempotent on clean text


def test_title_and_description_join_with_one_space():
    assert agnews_text(" Title\\ ", "") == "Title"
    assert agnews_text("Oil  #36;50", r"Prices\rise") == "Oil $50 Prices rise"


ROWS = (
    '3,"Wall St. Bears Claw Back","Reuters - Short-sellers, Wall Street\'s dwindling\\band of '
    'ultra-cynics, are seeing green again."\n'
    '1,Quote,"a ""quoted"" word, and a line\nbreak"\n'
    '4,"He said ""hi"" (AP)","AT&amp;T #39;s \\$5 plan\\\\Read more"\n'
)
CLEAN_TEXTS = [
    "Wall St. Bears Claw Back Reuters - Short-sellers, Wall Street's dwindling band of "
    "ultra-cynics, are seeing green again.",
    'Quote a "quoted" word, and a line break',
    'He said "hi" (AP) AT&T\'s $5 plan Read more',
]


@pytest.fixture
def news_files(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(ROWS, encoding="utf-8")
    headed = tmp_path / "headed.csv"
    headed.write_text("label,title,description\n" + ROWS, encoding="utf-8")
    return plain, headed


def test_read_agnews_csv_cleans_and_keeps_lines(news_files):
    plain, headed = news_files
    items = read_agnews_csv(plain)
    assert [i.text for i in items] == CLEAN_TEXTS
    assert [i.label for i in items] == [2, 0, 3]
    assert [i.line for i in items] == [1, 2, 4]  # the second row spans lines 2 and 3
    with_header = read_agnews_csv(headed)
    assert [i.text for i in with_header] == CLEAN_TEXTS
    assert [i.line for i in with_header] == [2, 3, 5]
    assert len(read_agnews_csv(headed, limit=2)) == 2
    with pytest.raises(ConfigError):
        read_agnews_csv(headed, limit=0)


def test_fine_tuning_and_the_classifier_read_the_same_texts(news_files):
    _, headed = news_files
    examples = read_agnews_examples(headed)
    data = read_labeled_csv(headed)
    assert [e.text_a for e in examples] == list(data.texts) == CLEAN_TEXTS
    assert [e.id for e in examples] == ["line 2", "line 3", "line 5"]
    # the classes present, in AG News order; the labels as the file writes them
    assert data.class_names == ("World", "Business", "Sci/Tech")
    assert data.labels.tolist() == [1, 0, 2] and data.written == ("3", "1", "4")
    assert data.lines == (2, 3, 5)


def test_a_headerless_agnews_file_is_read_by_the_classifier_too(news_files):
    plain, _ = news_files
    assert list(read_labeled_csv(plain).texts) == CLEAN_TEXTS


def test_other_csv_files_are_not_cleaned(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('label,text\n1,"C:\\\\temp  #39;"\n2,b\n', encoding="utf-8")
    assert read_labeled_csv(path).texts[0] == "C:\\\\temp #39;"


def test_agnews_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,title,description\n2,a,b\n5,c,d\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv:3: label '5' is not one of 1, 2, 3, 4"):
        read_agnews_csv(bad)
    blank = tmp_path / "blank.csv"
    blank.write_text('1,"\\\\"," "\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"blank.csv:1: blank title and description"):
        read_agnews_csv(blank)
    one = tmp_path / "one.csv"
    one.write_text("1,a,b\n1,c,d\n", encoding="utf-8")
    with pytest.raises(DataError, match="only one class"):
        read_labeled_csv(one)


def test_tfds_records_go_through_the_same_rule(tmp_path):
    import tensorflow_datasets as tfds

    def as_dataset(self, *args, **kwargs):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(
            {
                "title": ["Wall St. Bears Claw Back", "Oil  #36;50"],
                "description": [r"Wall Street's dwindling\band", r"Prices\rise"],
                "label": np.array([2, 3], dtype=np.int64),
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset, data_dir=str(tmp_path)):
        items = load_agnews_tfds("test")
        assert len(load_agnews_tfds("test", limit=1)) == 1
    assert [i.text for i in items] == [
        "Wall St. Bears Claw Back Wall Street's dwindling band",
        "Oil $50 Prices rise",
    ]
    assert [i.label for i in items] == [2, 3] and items[0].line is None
    data = LabeledTexts.from_agnews(items)
    assert data.class_names == ("Business", "Sci/Tech") and data.written is None


def test_tfds_with_random_records(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=9, data_dir=str(tmp_path)):
        items = load_agnews_tfds("test")
    assert len(items) == 9 and all(0 <= i.label < len(AGNEWS_LABELS) for i in items)
    assert all(isinstance(i.text, str) for i in items)


@pytest.mark.integration
def test_the_shared_test_split_is_clean(shared_data):
    path = shared_data / "ag-news" / "test.csv"
    items = read_agnews_csv(path)
    assert len(items) == 7600
    assert np.bincount([i.label for i in items]).tolist() == [1900] * len(AGNEWS_LABELS)
    texts = [i.text for i in items]
    for leftover in ("\\", "#39;", "#36;", "&amp;", "&lt;", "  "):
        assert not any(leftover in t for t in texts), leftover
    assert any("A second team of rocketeers competing for the $10 million" in t for t in texts)
    assert list(read_labeled_csv(path).texts) == texts
    assert [e.text_a for e in read_agnews_examples(path)] == texts
