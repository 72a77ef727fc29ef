"""Text sources: wiki40b markup and tfds loading (mocked), CoNLL-U, CSV, plain text, specs."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.errors import DataError
from bert_repro.text import (
    conllu_texts,
    csv_texts,
    iter_texts,
    load_texts,
    parse_wiki40b,
    plain_texts,
    wiki40b_paragraphs,
)

# Shaped like a real wiki40b/en example (markers on their own lines, _NEWLINE_ inside
# paragraphs, a section with two paragraph blocks, non-ASCII text).
ARTICLE = (
    "\n_START_ARTICLE_\nAlan Turing\n_START_PARAGRAPH_\n"
    "Alan Mathison Turing was an English mathematician._NEWLINE_He was highly influential."
    "\n_START_SECTION_\nEarly life\n_START_PARAGRAPH_\n"
    "Turing was born in Maida Vale, London.\n_START_PARAGRAPH_\n"
    "His father was in the Indian Civil Service (ICS)._NEWLINE_Café et crème."
    "\n_START_SECTION_\nLegacy\n_START_PARAGRAPH_\n   \n"
)
ARTICLE_2 = "_START_ARTICLE_\nEnigma\n_START_SECTION_\nDesign\n_START_PARAGRAPH_\nRotors."
PARAGRAPHS = [
    "Alan Mathison Turing was an English mathematician.\nHe was highly influential.",
    "Turing was born in Maida Vale, London.",
    "His father was in the Indian Civil Service (ICS).\nCafé et crème.",
]


def test_parse_wiki40b_real_markup():
    assert parse_wiki40b(ARTICLE) == PARAGRAPHS
    # tf.data gives UTF-8 bytes; titles and section names are never paragraphs
    assert parse_wiki40b(ARTICLE.encode("utf-8")) == PARAGRAPHS
    assert parse_wiki40b(ARTICLE, newline=" ")[0].endswith(
        "mathematician. He was highly influential."
    )
    assert parse_wiki40b("_START_ARTICLE_\nNo text\n_START_SECTION_\nEmpty") == []


def _fake_wiki(articles):
    def as_dataset(self, *args, **kwargs):
        import tensorflow as tf

        n = len(articles)
        return tf.data.Dataset.from_tensor_slices(
            {"text": articles, "wikidata_id": ["Q1"] * n, "version_id": ["0"] * n}
        )

    return as_dataset


def test_wiki40b_paragraphs_through_tfds(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(as_dataset_fn=_fake_wiki([ARTICLE, ARTICLE_2])):
        assert list(wiki40b_paragraphs("train", data_dir=tmp_path)) == [*PARAGRAPHS, "Rotors."]
        assert list(wiki40b_paragraphs("validation", limit=2)) == PARAGRAPHS[:2]
        assert list(load_texts(f"wiki40b:test:{tmp_path}", limit=4))[-1] == "Rotors."
        # the seed's way: a loaded split handed over as it is (mocked tfds has no split list,
        # so `tfds.load(name)["train"]` is spelled with split= here)
        split = tfds.load("wiki40b/en", split="train", data_dir=str(tmp_path))
        assert list(iter_texts(split, limit=3)) == PARAGRAPHS


def test_wiki40b_missing_dataset_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not available here") as info:
        wiki40b_paragraphs("train", data_dir=tmp_path / "nowhere")
    assert "wiki40b/en" in str(info.value) and "--texts wiki40b:SPLIT:DIR" in str(info.value)


def test_iter_texts_forms():
    import tensorflow as tf

    texts = ["one text", "  ", "two", b"three"]
    assert list(iter_texts(texts)) == ["one text", "two", "three"]
    assert list(iter_texts(tf.data.Dataset.from_tensor_slices(["a b", "c"]))) == ["a b", "c"]
    assert list(iter_texts(np.array(["x", "y", "z"]), limit=2)) == ["x", "y"]
    assert list(iter_texts([ARTICLE, "plain"])) == [*PARAGRAPHS, "plain"]
    assert list(iter_texts(iter(["gen"]))) == ["gen"]
    with pytest.raises(DataError, match="single string"):
        iter_texts("a single text")
    with pytest.raises(DataError, match="'text' field"):
        list(iter_texts([{"title": "x"}]))
    with pytest.raises(DataError, match="expected a text"):
        list(iter_texts([3]))


CONLLU = """\
# sent_id = 1
# text = I don't know.
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
3\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tI\tI\tPRON\tPRP\t_\t2\tnsubj\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No
2\tca\tcan\tAUX\tMD\t_\t0\troot\t_\t_
3\tn't\tnot\tPART\tRB\t_\t2\tadvmod\t_\t_
3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t2:xcomp\t_
4\t!\t!\tPUNCT\t.\t_\t2\tpunct\t_\t_

"""


def test_conllu_texts(tmp_path):
    path = tmp_path / "tiny.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    # first from "# text"; second has none: its syntactic words (no multiword form, no
    # empty node) joined by spaces
    assert conllu_texts(path) == ["I don't know.", "I ca n't !"]
    assert load_texts(str(path)) == conllu_texts(path)
    assert load_texts(f"conllu:{path}", limit=1) == ["I don't know."]
    with pytest.raises(DataError, match="no such file"):
        conllu_texts(tmp_path / "missing.conllu")


def test_csv_and_plain_texts(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text('label,text\n1,"hello, world"\n2,\n3,"two\nlines"\n', encoding="utf-8")
    assert csv_texts(csv_path, "text") == ["hello, world", "two\nlines"]
    assert load_texts(str(csv_path)) == ["hello, world", "two\nlines"]
    assert load_texts(f"csv:{csv_path}:label") == ["1", "2", "3"]
    with pytest.raises(DataError, match="no column 'body'; the columns are 'label', 'text'"):
        csv_texts(csv_path, "body")
    txt = tmp_path / "t.txt"
    txt.write_text("first line\n\n  second line  \n", encoding="utf-8")
    assert plain_texts(txt) == ["first line", "second line"]
    assert load_texts(f"txt:{txt}", limit=1) == ["first line"]
    with pytest.raises(DataError, match="cannot tell"):
        load_texts(str(tmp_path / "t.json"))
    with pytest.raises(DataError, match="csv:PATH:COLUMN"):
        load_texts(f"csv:{csv_path}")


@pytest.mark.integration
def test_real_files(shared_data, ewt_dev):
    texts = conllu_texts(ewt_dev)
    assert len(texts) == 2001
    assert texts[0] == "From the AP comes this story :"
    ag = shared_data / "ag-news" / "test.csv"
    desc = load_texts(f"csv:{ag}:description")
    assert len(desc) == 7600
    assert desc[0].startswith("Unions representing workers at Turner")
    with pytest.raises(DataError, match="'label', 'title', 'description'"):
        load_texts(str(ag))
