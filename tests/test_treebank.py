"""CoNLL-U reading: syntactic words only, tree distances/depths, and precise errors."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from bert_repro.errors import DataError
from bert_repro.treebank import (
    parse_conllu,
    punctuation_mask,
    read_conllu,
    tree_depths,
    tree_distances,
)


def row(i, form, head, upos="NOUN", xpos="NN", deprel="dep"):
    return f"{i}\t{form}\t{form.lower()}\t{upos}\t{xpos}\t_\t{head}\t{deprel}\t_\t_"


# "I don't know ." with the multiword token "don't" = do + n't, and an empty node 3.1.
# Words: 1 I, 2 do, 3 n't, 4 know, 5 .   (heads: I->know, do->know, n't->know, know root)
MWT_SENTENCE = "\n".join(
    [
        "# sent_id = s1",
        "# text = I don't know.",
        row(1, "I", 4, "PRON", "PRP"),
        "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
        row(2, "do", 4, "AUX", "VBP"),
        row(3, "n't", 4, "PART", "RB"),
        "3.1\tknow\tknow\tVERB\tVB\t_\t_\t_\t4:conj\t_",
        row(4, "know", 0, "VERB", "VB", "root"),
        row(5, ".", 4, "PUNCT", "."),
        "",
        "# sent_id = s2",
        "# text = Dogs bark",
        row(1, "Dogs", 2),
        row(2, "bark", 0, "VERB", "VBP", "root"),
        "",
    ]
)


def test_multiword_token_and_empty_node_are_not_words(tmp_path):
    path = tmp_path / "mwt.conllu"
    path.write_text(MWT_SENTENCE, encoding="utf-8")
    s1, s2 = read_conllu(path)
    assert s1.words == ("I", "do", "n't", "know", ".")
    assert s1.heads.tolist() == [4, 4, 4, 0, 4]
    assert s1.text == "I don't know." and s1.sent_id == "s1"
    assert s1.lines == (3, 5, 6, 8, 9)  # the 2-3 and 3.1 lines are skipped
    assert s1.start_line == 1 and s1.path == str(path)
    assert s1.upos[4] == "PUNCT" and s1.xpos[0] == "PRP"
    assert s1.depths.tolist() == [1, 1, 1, 0, 1]
    star = np.array(
        [
            [0, 2, 2, 1, 2],
            [2, 0, 2, 1, 2],
            [2, 2, 0, 1, 2],
            [1, 1, 1, 0, 1],
            [2, 2, 2, 1, 0],
        ]
    )
    np.testing.assert_array_equal(s1.distances, star)
    assert s1.punctuation.tolist() == [False, False, False, False, True]
    assert s2.words == ("Dogs", "bark") and s2.start_line == 11
    assert s2.distances.tolist() == [[0, 1], [1, 0]]


def test_chain_distances_and_depths_by_hand():
    # 1 <- 2 <- 3 (root): word 3 is the root, 2 depends on 3, 1 on 2.
    heads = [2, 3, 0]
    assert tree_depths(heads).tolist() == [2, 1, 0]
    assert tree_distances(heads).tolist() == [[0, 1, 2], [1, 0, 1], [2, 1, 0]]


def _bfs_distances(heads):
    n = len(heads)
    adj = [[] for _ in range(n)]
    for i, h in enumerate(heads):
        if h:
            adj[i].append(h - 1)
            adj[h - 1].append(i)
    out = np.zeros((n, n), dtype=int)
    for s in range(n):
        seen = {s: 0}
        q = deque([s])
        while q:
            u = q.popleft()
            for v in adj[u]:
                if v not in seen:
                    seen[v] = seen[u] + 1
                    q.append(v)
        out[s] = [seen[j] for j in range(n)]
    return out


def random_heads(rng, n):
    """A random projective-or-not tree over words 1..n as a heads list."""
    order = rng.permutation(n)
    heads = [0] * n
    for k in range(1, n):
        heads[order[k]] = int(order[rng.integers(0, k)]) + 1
    return heads


def test_tree_distances_match_breadth_first_search():
    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 7, 20, 60]:
        for _ in range(5):
            heads = random_heads(rng, n)
            d = tree_distances(heads)
            np.testing.assert_array_equal(d, _bfs_distances(heads))
            root = heads.index(0)
            np.testing.assert_array_equal(tree_depths(heads), d[root])


def test_tree_functions_reject_cycles_and_do_not_modify_input():
    heads = np.array([2, 1, 0])
    with pytest.raises(ValueError, match="cycle"):
        tree_distances(heads)
    with pytest.raises(ValueError, match="0..3"):
        tree_depths([4, 0, 1])
    h = np.array([0, 1, 1])
    tree_distances(h)
    assert h.tolist() == [0, 1, 1]


def test_punctuation_follows_ptb_xpos_then_upos():
    upos = ["PUNCT", "PUNCT", "NOUN", "PUNCT", "SYM", "PUNCT"]
    xpos = [",", "HYPH", "NN", "_", "-LRB-", "``"]
    # HYPH is not in the reference's list even though its UPOS is PUNCT; -LRB- counts whatever
    # its UPOS; with no XPOS, UPOS decides.
    assert punctuation_mask(upos, xpos).tolist() == [True, False, False, True, True, True]


# ----------------------------------------------------------------------------- bad input


def _write(tmp_path, text, name="bad.conllu"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _error(path) -> DataError:
    with pytest.raises(DataError) as info:
        read_conllu(path)
    return info.value


def test_cycle_is_reported_with_file_and_line(tmp_path):
    # word 1 is the root; words 2 and 3 are each other's heads, cut off from it.
    text = "\n".join(
        ["# sent_id = c", row(1, "a", 0, deprel="root"), row(2, "b", 3), row(3, "c", 2)]
    )
    err = _error(_write(tmp_path, text + "\n"))
    assert err.path.endswith("bad.conllu") and err.line == 3
    assert "cycle" in err.reason and "2 -> 3" in err.reason
    assert str(err).startswith(f"{err.path}:3: ")


def test_head_out_of_range(tmp_path):
    text = "\n".join([row(1, "a", 0, deprel="root"), row(2, "b", 7)]) + "\n"
    err = _error(_write(tmp_path, text))
    assert err.line == 2 and "head 7" in err.reason and "0..2" in err.reason


def test_missing_column(tmp_path):
    bad = "\t".join(row(2, "b", 1).split("\t")[:9])
    text = "\n".join(["# text = a b", row(1, "a", 0, deprel="root"), bad]) + "\n"
    err = _error(_write(tmp_path, text))
    assert err.line == 3 and "10 tab-separated columns, found 9" in err.reason


def test_empty_file(tmp_path):
    err = _error(_write(tmp_path, ""))
    assert err.path.endswith("bad.conllu") and "empty" in err.reason
    err = _error(_write(tmp_path, "\n\n  \n", name="blank.conllu"))
    assert "no sentences" in err.reason


def test_missing_file(tmp_path):
    err = _error(tmp_path / "nope.conllu")
    assert "no such" in err.reason


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        ([row(1, "a", 0), row(3, "b", 1)], 2, "word ID 3 out of order"),
        ([row(1, "a", 0), row(2, "b", 0)], 2, "2 roots"),
        ([row(1, "a", 2), row(2, "b", 1)], 1, "0 roots"),
        ([row(1, "a", 0), row(2, "b", 2)], 2, "cycle through words 2"),
        ([row(1, "a", 0), row(2, "b", "x")], 2, "head"),
        ([row(1, "a", 0), row("x", "b", 1)], 2, "'x' is not a valid ID"),
        ([row(1, "a", 0), row(2, "b", "_")], 2, "no head"),
        ([row(1, "a", 0), row(2, "b", 1).replace("\tNOUN\t", "\t\t")], 2, "column 4 is empty"),
        (["# only a comment"], 1, "no syntactic words"),
    ],
)
def test_malformed_sentences_name_the_line(tmp_path, lines, line, reason):
    text = "# sent_id = ok\n" + row(1, "fine", 0) + "\n\n" + "\n".join(lines) + "\n"
    err = _error(_write(tmp_path, text))
    assert err.line == line + 3, err
    assert reason in err.reason, err


def test_not_utf8(tmp_path):
    p = tmp_path / "latin.conllu"
    p.write_bytes(row(1, "a", 0).encode() + b"\n" + row(2, "caf\xe9", 1).encode("latin-1"))
    err = _error(p)
    assert err.line == 2 and "UTF-8" in err.reason


def test_crlf_and_missing_final_blank_line():
    text = "# text = a b\r\n" + row(1, "a", 0) + "\r\n" + row(2, "b", 1)
    (s,) = parse_conllu(text)
    assert s.words == ("a", "b") and s.text == "a b"


@pytest.mark.integration
def test_ewt_dev_counts(ewt_dev):
    sentences = read_conllu(ewt_dev)
    assert len(sentences) == 2001
    assert sum(len(s) for s in sentences) == 25147  # syntactic words (shared/data/README.md)
    assert all(s.text and s.sent_id for s in sentences)
    assert all(int((s.heads == 0).sum()) == 1 for s in sentences)


@pytest.mark.integration
def test_a_byte_order_mark_is_dropped(ewt_dev, tmp_path):
    """Saved by an editor that writes a BOM: EWT's first two sentences read as without it
    (before: "expected 10 tab-separated columns, found 1" at line 1)."""
    first_two = "\n\n".join(ewt_dev.read_text(encoding="utf-8").split("\n\n")[:2]) + "\n\n"
    plain, bom = tmp_path / "plain.conllu", tmp_path / "bom.conllu"
    plain.write_text(first_two, encoding="utf-8")
    bom.write_bytes(b"\xef\xbb\xbf" + first_two.encode("utf-8"))
    expected, got = read_conllu(plain), read_conllu(bom)
    assert len(got) == 2 and got[0].sent_id == expected[0].sent_id
    for a, b in zip(expected, got, strict=True):
        assert (a.words, a.upos, a.xpos, a.text, a.lines) == (
            b.words,
            b.upos,
            b.xpos,
            b.text,
            b.lines,
        )
        np.testing.assert_array_equal(a.heads, b.heads)
    assert parse_conllu("\ufeff" + first_two)[1].words == expected[1].words
