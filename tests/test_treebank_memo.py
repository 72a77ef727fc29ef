"""read_conllu parses a file once per process while the file stays the same."""

from __future__ import annotations

import os

import bert_repro.treebank as tb
from bert_repro.treebank import read_conllu

ONE = "1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_\n\n"
TWO = "1\tCats\tcat\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n2\tmeow\tmeow\tVERB\tVBP\t_\t0\troot\t_\t_\n\n"
OLD_NS = 1_000_000_000_000_000_000  # 2001


def _write(path, text, ns=OLD_NS):
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(ns, ns))


def _count_parses(monkeypatch, racy_ns: int = 0) -> list:
    """Count the real parses; ``racy_ns`` 0: a file is remembered even though utime has just
    set its ctime to now (which only a long-untouched file escapes)."""
    monkeypatch.setattr(tb, "RACY_NS", racy_ns)
    calls = []
    real = tb._read_conllu
    monkeypatch.setattr(tb, "_read_conllu", lambda p: calls.append(p) or real(p))
    return calls


def test_an_unchanged_file_is_parsed_once(tmp_path, monkeypatch):
    calls = _count_parses(monkeypatch)
    path = tmp_path / "a.conllu"
    _write(path, ONE)
    first, second = read_conllu(path), read_conllu(path)
    assert len(calls) == 1
    assert first == second and first is not second  # a new list of the same sentences
    assert all(a is b for a, b in zip(first, second, strict=True))
    second.append(None)  # the caller's list is its own
    assert len(read_conllu(path)) == 1 and len(calls) == 1


def test_a_changed_file_is_read_again(tmp_path, monkeypatch):
    calls = _count_parses(monkeypatch)
    path = tmp_path / "a.conllu"
    _write(path, ONE)
    assert read_conllu(path)[0].words == ("Dogs", "bark")
    _write(path, TWO, OLD_NS + 1)  # same size, another time
    assert read_conllu(path)[0].words == ("Cats", "meow")
    assert len(calls) == 2


def test_a_file_written_just_now_is_not_remembered(tmp_path, monkeypatch):
    calls = _count_parses(monkeypatch, tb.RACY_NS)
    path = tmp_path / "a.conllu"
    path.write_text(ONE, encoding="utf-8")  # mtime now: a same-tick rewrite would go unseen
    read_conllu(path)
    read_conllu(path)
    assert len(calls) == 2


def test_the_name_as_given_is_kept(tmp_path, monkeypatch):
    _count_parses(monkeypatch)
    path = tmp_path / "a.conllu"
    _write(path, ONE)
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / ".." / "a.conllu"
    assert read_conllu(path)[0].path == str(path)
    assert read_conllu(other)[0].path == str(other)
