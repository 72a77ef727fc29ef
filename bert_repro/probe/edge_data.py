"""Edge-probing examples from a CoNLL-U treebank, and their batches of cached word features.

Two of Tenney et al.'s edge-probing tasks (ICLR 2019, "What do you learn from context?") come
from a UD treebank:

* ``"pos"``: one span, the word; label its UPOS tag (17 universal tags).
* ``"deprel"``: two spans, the dependent and its head; label the universal relation (the
  part before ``:``, ``nsubj:pass`` -> ``nsubj``; 37 relations). The root word is kept, with
  itself as its head and the label ``root``, as the reference's conversion script does
  (jiant ``probing/data/ud_to_json.py``: ``if this_head == 0: this_head = this_id``).

Words are syntactic words (multiword-token lines and empty nodes are not words, see
:mod:`bert_repro.treebank`). A span is one word, whose vector is the mean of its wordpieces
from the word-feature cache (:func:`bert_repro.cache.cached_word_features`, the same entries
the structural probes read): the cache holds word vectors, not wordpieces.

The label sets are UD's fixed inventories, so every split shares one label space and a label
no training example has is still a class (always wrong when predicted never); a label outside
them is a :class:`~bert_repro.errors.DataError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from ..errors import ConfigError, DataError, check_choice
from ..treebank import Sentence, universal_relation
from .data import _Epochs

EdgeTask = Literal["pos", "deprel"]
EDGE_TASKS: tuple[str, ...] = get_args(EdgeTask)

#: The 17 universal POS tags of UD v2.
UPOS_TAGS: tuple[str, ...] = (
    "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
)
#: The 37 universal dependency relations of UD v2.
UD_RELATIONS: tuple[str, ...] = tuple(
    (
        "acl advcl advmod amod appos aux case cc ccomp clf compound conj cop csubj dep det "
        "discourse dislocated expl fixed flat goeswith iobj list mark nmod nsubj nummod obj obl "
        "orphan parataxis punct reparandum root vocative xcomp"
    ).split()
)
TASK_LABELS: dict[str, tuple[str, ...]] = {"pos": UPOS_TAGS, "deprel": UD_RELATIONS}
#: The spans of each task's examples, in the order their vectors are concatenated.
SPAN_ROLES: dict[str, tuple[str, ...]] = {"pos": ("word",), "deprel": ("dependent", "head")}


@dataclass(frozen=True)
class EdgeExamples:
    """The examples of one task on one treebank, as rows of its word-feature store.

    Attributes:
        task: ``"pos"`` or ``"deprel"``.
        rows: ``(n, R)`` int64; example ``e``'s span ``r`` is the word at row ``rows[e, r]`` of
            the store (sentence ``i``'s word ``j`` is row ``offsets[i] + j``).
        labels: ``(n,)`` int32 indices into :attr:`label_names`.
        starts: ``(n_sentences + 1,)`` sentence ``i``'s examples are ``starts[i]:starts[i+1]``.
        lengths: ``(n_sentences,)`` words per sentence (checked against the store).
    """

    task: str
    rows: np.ndarray
    labels: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def label_names(self) -> tuple[str, ...]:
        return TASK_LABELS[self.task]

    @property
    def num_spans(self) -> int:
        return len(SPAN_ROLES[self.task])


def _label_index(task: str, value: str, sentence: Sentence, j: int) -> int:
    names = TASK_LABELS[task]
    label = value if task == "pos" else universal_relation(value)
    try:
        return names.index(label)
    except ValueError:
        what = "UPOS tag" if task == "pos" else "dependency relation"
        raise DataError(
            f"word {j + 1} ({sentence.words[j]!r}) has the {what} {value!r}, which is not one "
            f"of UD's {len(names)} ({', '.join(names)}); the {task} edge probe needs them",
            path=sentence.path,
            line=sentence.lines[j] if sentence.lines else sentence.start_line,
        ) from None


def edge_examples(sentences: Sequence[Sentence], task: EdgeTask) -> EdgeExamples:
    """Every word of ``sentences`` as an example of ``task`` (see the module docstring).

    Args:
        sentences: the treebank's sentences (e.g. ``ProbeDataset.sentences``), in the order of
            the feature store's rows.
        task: ``"pos"`` (span: the word) or ``"deprel"`` (spans: the word and its head; the
            root is its own head).

    Returns:
        The examples, one per word, sentence by sentence in word order.

    Raises:
        DataError: a label outside UD's inventory (``_`` included), naming file and line.
    """
    check_choice("task", task, EDGE_TASKS)
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total = int(offsets[-1])
    labels = np.empty(total, dtype=np.int32)
    if task == "pos":
        rows = np.arange(total, dtype=np.int64)[:, None]
        for i, s in enumerate(sentences):
            for j, tag in enumerate(s.upos):
                labels[offsets[i] + j] = _label_index(task, tag, s, j)
    else:
        rows = np.empty((total, 2), dtype=np.int64)
        for i, s in enumerate(sentences):
            if len(s.deprels) != len(s):
                raise DataError(
                    "the sentence has no dependency relations (made without deprels)",
                    path=s.path,
                    line=s.start_line,
                )
            heads = np.asarray(s.heads, dtype=np.int64)
            own = np.arange(len(s), dtype=np.int64)
            rows[offsets[i] : offsets[i + 1], 0] = offsets[i] + own
            rows[offsets[i] : offsets[i + 1], 1] = offsets[i] + np.where(heads > 0, heads - 1, own)
            for j, rel in enumerate(s.deprels):
                labels[offsets[i] + j] = _label_index(task, rel, s, j)
    return EdgeExamples(task, rows, labels, offsets.copy(), lengths)


def iter_edge_batches(
    examples: EdgeExamples,
    store,
    states: Sequence[int],
    *,
    batch_size: int = 20,
    order: Sequence[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of the examples of ``batch_size`` sentences at a time, every hidden state asked.

    Args:
        examples: from :func:`edge_examples`.
        store: the treebank's :class:`~bert_repro.cache.WordFeatureStore` (``.layer(k)``
            ``(total_words, H)``, memory-mapped) or anything with ``layer``, ``lengths`` and
            ``hidden_size``.
        states: the ``S`` hidden-state indices to read, in the order to stack them.
        batch_size: sentences per batch (all their examples); the last batch may be smaller.
        order: the sentence order (default file order).

    Yields:
        ``features`` ``(S, R, N, H)`` float32 (span ``r`` of the batch's ``N`` examples at
        hidden state ``states[s]``) and ``labels`` ``(N,)`` int32.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if not states:
        raise ConfigError("no hidden states given")
    if not np.array_equal(np.asarray(store.lengths), examples.lengths):
        raise DataError(
            f"the feature store has {len(store.lengths)} sentences whose lengths do not match "
            f"the {len(examples.lengths)} sentences of the examples (features of another corpus?)"
        )
    vectors = [store.layer(int(k)) for k in states]  # S x (total_words, H)
    starts = examples.starts
    idx_all = (
        np.arange(len(examples.lengths)) if order is None else np.asarray(order, dtype=np.int64)
    )
    hidden = int(store.hidden_size)
    for first in range(0, len(idx_all), batch_size):
        idx = idx_all[first : first + batch_size]
        ex = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in idx])  # (N,)
        rows = examples.rows[ex].T.reshape(-1)  # (R*N,) role-major
        feats = np.empty((len(vectors), examples.num_spans * len(ex), hidden), np.float32)
        for s, vec in enumerate(vectors):
            feats[s] = vec[rows]
        yield (
            feats.reshape(len(vectors), examples.num_spans, len(ex), hidden),
            examples.labels[ex],
        )


def edge_batches(
    examples: EdgeExamples,
    store,
    states: Sequence[int],
    *,
    batch_size: int = 20,
    shuffle: bool = False,
    seed: int | None = None,
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """:func:`iter_edge_batches` epoch after epoch: each iteration of the returned object is one
    epoch; shuffled, each epoch takes a new sentence order from a generator seeded with
    ``seed`` (as :meth:`bert_repro.probe.data.ProbeDataset.layer_batches`)."""
    states = [int(k) for k in states]
    return _Epochs(
        lambda order: iter_edge_batches(
            examples, store, states, batch_size=batch_size, order=order
        ),
        len(examples.lengths),
        shuffle=shuffle,
        seed=seed,
    )
