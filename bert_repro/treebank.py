"""Read dependency treebanks in CoNLL-U and derive the tree quantities the structural probes use.

A sentence's *syntactic words* are its lines with an integer ID (``1``, ``2``, ...). Multiword
token lines (``3-4``: the surface form ``don't`` of the words ``do`` and ``n't``) and empty
nodes (``8.1``: enhanced-graph copies with no basic head) are not words: they are skipped, and
tree distances and depths are between words ``1..n`` only.

Parsing is done by the ``conllu`` library; this module then checks what the probes rely on and
fails with :class:`~bert_repro.errors.DataError` naming the file, the 1-based line and the
reason: ten tab-separated columns, word IDs ``1..n`` in order, heads in ``0..n``, exactly one
root and no cycle; a multiword range ``a-b`` right before word ``a``, spanning existing words
and not overlapping another; an empty node ``k.m`` right after word ``k``.

Punctuation follows Hewitt & Manning's reporting code: a word is punctuation when its PTB XPOS
tag is one of ``'' , . : `` -LRB- -RRB-``; when XPOS is absent (``_``), when its UPOS is
``PUNCT``.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

BOM = "\ufeff"  # a byte-order mark: dropped from the start of a file, as "utf-8-sig" does
PUNCT_XPOS: frozenset[str] = frozenset({"''", ",", ".", ":", "``", "-LRB-", "-RRB-"})
"""PTB tags counted as punctuation (``reporter.py`` of Hewitt & Manning's structural-probes)."""

N_COLUMNS = 10
ABSENT = "_"


@dataclass(frozen=True)
class Sentence:
    """One sentence of a treebank, restricted to its syntactic words.

    Attributes:
        words: the word forms, ``(n,)``.
        heads: ``(n,)`` int, the 1-based head of each word, ``0`` for the root.
        upos: universal POS tags (``"_"`` when absent).
        xpos: language-specific (PTB for English) POS tags (``"_"`` when absent).
        text: the ``# text =`` comment, or ``None``.
        sent_id: the ``# sent_id =`` comment, or ``None``.
        lines: ``(n,)`` 1-based line number of each word in the file.
        start_line: 1-based line number of the sentence's first line (comments included).
        path: the file read, or ``None`` for text parsed from memory.
        deprels: ``(n,)`` dependency relation of each word to its head (DEPREL column, e.g.
            ``nsubj:pass``; ``"_"`` when absent), or ``()`` for a sentence built without them;
            :func:`universal_relation` gives the universal part.
    """

    words: tuple[str, ...]
    heads: np.ndarray
    upos: tuple[str, ...]
    xpos: tuple[str, ...]
    text: str | None
    sent_id: str | None
    lines: tuple[int, ...]
    start_line: int
    path: str | None = None
    deprels: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.words)

    @property
    def punctuation(self) -> np.ndarray:
        """``(n,)`` bool, true for punctuation words (see :func:`punctuation_mask`)."""
        return punctuation_mask(self.upos, self.xpos)

    @property
    def distances(self) -> np.ndarray:
        """``(n, n)`` int tree distances between the words (see :func:`tree_distances`)."""
        return tree_distances(self.heads)

    @property
    def depths(self) -> np.ndarray:
        """``(n,)`` int tree depths, root 0 (see :func:`tree_depths`)."""
        return tree_depths(self.heads)


def universal_relation(deprel: str) -> str:
    """The universal part of a UD relation, before any ``:`` subtype (``"nsubj:pass"`` ->
    ``"nsubj"``), as the CoNLL 2018 shared task's evaluation compares relations."""
    return deprel.split(":", 1)[0]


def punctuation_mask(upos: Sequence[str], xpos: Sequence[str]) -> np.ndarray:
    """Which words are punctuation, as the structural-probe metrics exclude them.

    Args:
        upos: ``(n,)`` UPOS tags.
        xpos: ``(n,)`` XPOS tags, ``"_"`` (or ``None``) when absent.

    Returns:
        ``(n,)`` bool: XPOS in :data:`PUNCT_XPOS`; where XPOS is absent, UPOS ``== "PUNCT"``.
    """
    if len(upos) != len(xpos):
        raise ValueError(f"upos has {len(upos)} tags but xpos has {len(xpos)}")
    out = np.zeros(len(upos), dtype=bool)
    for i, (u, x) in enumerate(zip(upos, xpos, strict=True)):
        out[i] = (u == "PUNCT") if x in (None, ABSENT) else (x in PUNCT_XPOS)
    return out


def _ancestors(heads: np.ndarray) -> np.ndarray:
    """``(n, n)`` bool: ``A[i, a]`` is true when word ``a`` is ``i`` or one of its ancestors."""
    n = heads.shape[0]
    anc = np.zeros((n, n), dtype=bool)
    for i in range(n):
        node, steps = i, 0
        while True:
            anc[i, node] = True
            parent = int(heads[node]) - 1
            if parent < 0:
                break
            node, steps = parent, steps + 1
            if steps > n:
                raise ValueError(f"heads contain a cycle through word {i + 1}")
    return anc


def _check_heads(heads: Sequence[int] | np.ndarray) -> np.ndarray:
    h = np.asarray(heads)
    if h.ndim != 1 or (h.size and not np.issubdtype(h.dtype, np.integer)):
        raise ValueError(f"heads must be a 1-d integer array, got shape {h.shape} {h.dtype}")
    n = h.shape[0]
    if n and (h.min() < 0 or h.max() > n):
        raise ValueError(f"heads must lie in 0..{n}, got {h.min()}..{h.max()}")
    return h.astype(np.int64)


def tree_depths(heads: Sequence[int] | np.ndarray) -> np.ndarray:
    """Depth of each word in the dependency tree: the number of arcs from it up to the root.

    Args:
        heads: ``(n,)`` 1-based head of each word, ``0`` for the root.

    Returns:
        ``(n,)`` int64; the root has depth 0, its dependents 1, and so on.

    Raises:
        ValueError: heads out of range or with a cycle.
    """
    h = _check_heads(heads)
    return _ancestors(h).sum(axis=1) - 1


def tree_distances(heads: Sequence[int] | np.ndarray) -> np.ndarray:
    """Path length between every pair of words of a dependency tree (arcs taken undirected).

    ``d(i, j) = depth(i) + depth(j) - 2 depth(lca(i, j))``; the ancestors-or-self two words
    share are the chain from the root to their lowest common ancestor, so their count is
    ``depth(lca) + 1``.

    Args:
        heads: ``(n,)`` 1-based head of each word, ``0`` for the root.

    Returns:
        ``(n, n)`` int64, symmetric, zero diagonal.

    Raises:
        ValueError: heads out of range or with a cycle.
    """
    h = _check_heads(heads)
    anc = _ancestors(h).astype(np.int64)  # (n, n)
    depth = anc.sum(axis=1) - 1  # (n,)
    lca_depth = anc @ anc.T - 1  # (n, n)
    return depth[:, None] + depth[None, :] - 2 * lca_depth


# ----------------------------------------------------------------------------- reading


def _blocks(lines: list[str]):
    """Yield ``(start_line, [(line_no, text), ...])`` for each blank-line separated block."""
    block: list[tuple[int, str]] = []
    for no, text in enumerate(lines, start=1):
        if text.strip() == "":
            if block:
                yield block[0][0], block
                block = []
        else:
            block.append((no, text))
    if block:
        yield block[0][0], block


def _parse_block(block: list[tuple[int, str]], path: str | None):
    """Parse one sentence block with ``conllu``; find the failing line when it fails."""
    import conllu
    from conllu.exceptions import ParseException

    for no, text in block:
        if text.startswith("#"):
            continue
        cols = text.split("\t")
        if len(cols) != N_COLUMNS:
            raise DataError(
                f"expected {N_COLUMNS} tab-separated columns, found {len(cols)}", path=path, line=no
            )
        empty = [k + 1 for k, c in enumerate(cols) if c == ""]
        if empty:
            raise DataError(
                f"column {empty[0]} is empty (use '_' for no value)", path=path, line=no
            )
    try:
        return conllu.parse_token_and_metadata("\n".join(t for _, t in block))
    except ParseException:
        pass
    for no, text in block:  # locate the offending line
        if text.startswith("#"):
            continue
        try:
            conllu.parse_token_and_metadata(text)
        except ParseException as err:
            raise DataError(f"cannot parse the line: {err}", path=path, line=no) from None
    raise DataError("cannot parse the sentence", path=path, line=block[0][0])


def _sentence(block: list[tuple[int, str]], start: int, path: str | None) -> Sentence:
    tokens = _parse_block(block, path)
    token_lines = [no for no, text in block if not text.startswith("#")]
    words, heads, upos, xpos, deprels, lines = [], [], [], [], [], []
    ranges: list[tuple[int, int, int]] = []  # multiword tokens: (first word, last word, line)
    for token, no in zip(tokens, token_lines, strict=True):
        tid = token["id"]
        if isinstance(tid, tuple):  # multiword token (3, '-', 4) or empty node (8, '.', 1)
            _check_not_a_word(tid, len(words), ranges, path, no)
            continue
        if tid != len(words) + 1:
            raise DataError(
                f"word ID {tid} out of order: expected {len(words) + 1} "
                "(word IDs must run 1, 2, ... n)",
                path=path,
                line=no,
            )
        if token["head"] is None:
            raise DataError(f"word {tid} has no head ('_')", path=path, line=no)
        words.append(token["form"])
        heads.append(int(token["head"]))
        upos.append(token["upos"] or ABSENT)
        xpos.append(token["xpos"] or ABSENT)
        deprels.append(token["deprel"] or ABSENT)
        lines.append(no)
    if not words:
        raise DataError("sentence has no syntactic words", path=path, line=start)
    n = len(words)
    for first, last, no in ranges:
        if last > n:
            raise DataError(
                f"multiword token {first}-{last} ends past the last word {n}", path=path, line=no
            )
    for i, (h, no) in enumerate(zip(heads, lines, strict=True)):
        if not 0 <= h <= n:
            raise DataError(f"head {h} of word {i + 1} is out of range 0..{n}", path=path, line=no)
    roots = [i for i, h in enumerate(heads) if h == 0]
    if len(roots) != 1:
        where = lines[roots[1]] if len(roots) > 1 else start
        raise DataError(
            f"sentence has {len(roots)} roots (head 0), expected exactly 1"
            + (f": words {[r + 1 for r in roots]}" if roots else ""),
            path=path,
            line=where,
        )
    cycle = _find_cycle(heads)
    if cycle:
        raise DataError(
            f"heads form a cycle through words {' -> '.join(map(str, cycle))}",
            path=path,
            line=lines[cycle[0] - 1],
        )
    meta = tokens.metadata
    head_array = np.asarray(heads, dtype=np.int64)
    head_array.setflags(write=False)  # a Sentence is immutable
    return Sentence(
        words=tuple(words),
        heads=head_array,
        upos=tuple(upos),
        xpos=tuple(xpos),
        text=meta.get("text"),
        sent_id=meta.get("sent_id"),
        lines=tuple(lines),
        start_line=start,
        path=path,
        deprels=tuple(deprels),
    )


def _check_not_a_word(
    tid: tuple, n_before: int, ranges: list[tuple[int, int, int]], path: str | None, line: int
) -> None:
    """Check a multiword-token range or an empty-node ID against the words around it.

    A range ``a-b`` must come right before word ``a``, span at least two words and not overlap
    the previous range (its end ``b <= n`` is checked once the sentence is read); an empty
    node ``k.m`` must come after word ``k`` and before word ``k + 1``. A range that does not
    match the words means the file's tokens and words are out of step.
    """
    first, sep, second = tid
    if sep == "-":
        if not first < second:
            raise DataError(
                f"multiword token {first}-{second} must span two or more words",
                path=path,
                line=line,
            )
        if first != n_before + 1:
            raise DataError(
                f"multiword token {first}-{second} is not followed by word {first} "
                f"(the next word is {n_before + 1})",
                path=path,
                line=line,
            )
        if ranges and first <= ranges[-1][1]:
            raise DataError(
                f"multiword token {first}-{second} overlaps {ranges[-1][0]}-{ranges[-1][1]}",
                path=path,
                line=line,
            )
        ranges.append((first, second, line))
    elif first != n_before:
        raise DataError(
            f"empty node {first}.{second} must follow word {first}, but it follows word {n_before}",
            path=path,
            line=line,
        )


def _find_cycle(heads: list[int]) -> list[int]:
    """1-based word IDs of a cycle in ``heads`` (first found, in head order), or ``[]``."""
    n = len(heads)
    state = [0] * (n + 1)  # 0 unseen, 1 on the current path, 2 reaches the root
    state[0] = 2
    for start in range(1, n + 1):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node - 1]
        if state[node] == 1:  # came back onto the current path
            return path[path.index(node) :]
        for p in path:
            state[p] = 2
    return []


def parse_conllu(text: str, *, path: str | os.PathLike | None = None) -> list[Sentence]:
    """Parse CoNLL-U text into sentences of syntactic words, checking each tree.

    Args:
        text: the file's content; a leading byte-order mark (U+FEFF, as some editors and
            spreadsheet exports write) is dropped.
        path: the file it came from, used in error messages.

    Returns:
        The sentences in file order.

    Raises:
        DataError: naming the file, line and reason: a line without 10 tab-separated columns,
            an unparsable ID or head, word IDs not ``1..n`` in order, a head outside ``0..n``,
            no root or several, a cycle, a multiword range or empty node that does not match
            the words, a sentence without words, or no sentence at all.
    """
    spath = None if path is None else os.fspath(path)
    lines = text.removeprefix(BOM).split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    sentences = [_sentence(block, start, spath) for start, block in _blocks(lines)]
    if not sentences:
        raise DataError("no sentences found (the file is empty)", path=spath)
    return sentences


#: Files read by this process: ``{key: sentences}`` (:func:`_read_key`), the most recent last.
_READ: OrderedDict[tuple, tuple[Sentence, ...]] = OrderedDict()
READ_MEMO_FILES = 8
#: A file changed less than this long before it was read is not remembered (file times tick
#: coarsely: a second write in the same tick would keep size and ``mtime_ns``).
RACY_NS = 2_000_000_000


def _read_key(path: Path) -> tuple | None:
    """What identifies a file's content without reading it: the name as given (the sentences
    record it), the resolved path, inode, size and times; None if it cannot be stat'ed."""
    try:
        st = path.stat()
        return (
            str(path),
            str(path.resolve()),
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )
    except OSError:
        return None


def read_conllu(path: str | os.PathLike) -> list[Sentence]:
    """Read a CoNLL-U file (UTF-8, with or without a byte-order mark) into :class:`Sentence`
    objects of syntactic words.

    Multiword-token lines (``3-4``) and empty nodes (``8.1``) are skipped; each sentence keeps
    its ``# text =`` and ``# sent_id =`` comments and the line number of every word.

    A file is parsed once per process while its name, inode, size and times stay the same (the
    :data:`READ_MEMO_FILES` most recent files; parsing EWT's train file takes seconds, and a
    reproduction reads it in five steps): later calls get a new list of the same immutable
    sentences.

    Args:
        path: the ``.conllu`` file.

    Returns:
        The sentences in file order.

    Raises:
        DataError: the file is missing, not UTF-8, empty, or malformed (see :func:`parse_conllu`);
            the message names the file, the 1-based line and the reason.
    """
    p = Path(path)
    key = _read_key(p)
    if key is not None and key in _READ:
        _READ.move_to_end(key)
        return list(_READ[key])
    started = time.time_ns()
    sentences = _read_conllu(p)
    if key is not None and _read_key(p) == key and started - max(key[4], key[5]) > RACY_NS:
        _READ[key] = tuple(sentences)
        while len(_READ) > READ_MEMO_FILES:
            _READ.popitem(last=False)
    return sentences


def _read_conllu(p: Path) -> list[Sentence]:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("no such CoNLL-U file", path=p) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a CoNLL-U file", path=p) from None
    except UnicodeDecodeError as err:
        line = p.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text ({err.reason})", path=p, line=line) from None
    return parse_conllu(text, path=p)
