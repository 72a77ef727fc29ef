"""Dependency parsing as a fine-tuning task: treebank sentences in, trees out, UAS/LAS scored.

The sentences are the package's CoNLL-U reader's (:func:`bert_repro.treebank.read_conllu`:
syntactic words only, multi-word-token ranges and empty nodes skipped). A sentence is
tokenised word by word (``[CLS] pieces of word 1 ... [SEP]``) and each word is represented by
its first wordpiece (:func:`bert_repro.finetune.biaffine.gather_words`).

**Long sentences.** Training leaves out sentences of more than ``max_seq_length`` wordpieces
(their number is recorded). Evaluation parses every sentence whole up to the encoder's
position limit (``max_position_embeddings``; 512 for BERT and MiniLM, beyond every EWT
sentence); words past that limit get no head and count as errors, so scores are always over
all the words.

**Scores** (:func:`attachment_scores`): UAS = share of words with the gold head, LAS = with
the gold head and relation, a relation counting as correct when its universal part (before
``:``) matches, as the CoNLL 2018 shared task's ``conll18_ud_eval.py`` does. Two conventions
are reported (:func:`parse_scores`): CoNLL 2018, every word scored (``uas``, ``las``), and
PTB, punctuation (UPOS ``PUNCT``) left out (``uas_no_punct``, ``las_no_punct``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..batching import plan_batches
from ..errors import DataError
from ..pipeline import encode_corpus
from ..treebank import Sentence
from .dataset import Features, pad_inputs, predict_batch
from .mst import max_spanning_tree

LABEL_PAD = -1  # same as biaffine.LABEL_PAD (kept here so this module needs no TensorFlow)


@dataclass(frozen=True)
class ParseInputs:
    """Sentences tokenised for the parser.

    Attributes:
        features: ``input_ids``/``token_type_ids`` per sentence and ``extra["word_starts"]``,
            the first-wordpiece position of each kept word.
        kept: the index of each sentence in the input list.
        n_words: ``(len(kept),)`` words each sentence has in the treebank.
    """

    features: Features
    kept: np.ndarray
    n_words: np.ndarray


def first_wordpieces(word_index: np.ndarray, n_words: int) -> np.ndarray:
    """``(n_words,)`` position of the first wordpiece of each word.

    Args:
        word_index: ``(T,)`` the word of each wordpiece, ``-1`` for ``[CLS]``/``[SEP]``.
        n_words: number of words (every one has at least one piece).
    """
    words, first = np.unique(word_index, return_index=True)
    keep = words >= 0
    if not np.array_equal(words[keep], np.arange(n_words)):
        raise DataError("a word has no wordpiece; cannot align wordpieces to words")
    return first[keep].astype(np.int32)


def encode_sentences(
    tokenizer, sentences: Sequence[Sentence], max_length: int, *, drop_long: bool
) -> ParseInputs:
    """Tokenise sentences word by word and locate every word's first wordpiece.

    Args:
        tokenizer: the model's (fast) tokenizer.
        sentences: treebank sentences.
        max_length: wordpieces per input, ``[CLS]``/``[SEP]`` included.
        drop_long: leave out sentences longer than ``max_length`` (training); otherwise cut
            them to ``max_length`` and keep only the words whose first piece fits.

    Returns:
        The inputs of the kept sentences.
    """
    if not sentences:
        raise DataError("no sentences to parse")
    corpus = encode_corpus(tokenizer, [list(s.words) for s in sentences], words=True)
    sep = np.asarray([tokenizer.sep_token_id], np.int32)
    ids, types, starts, kept, n_words = [], [], [], [], []
    for i, item in enumerate(corpus.items):
        first = first_wordpieces(item.word_index, item.n_words)
        input_ids = item.input_ids
        if len(input_ids) > max_length:
            if drop_long:
                continue
            input_ids = np.concatenate([input_ids[: max_length - 1], sep])
            first = first[first < max_length - 1]
        ids.append(input_ids.astype(np.int32))
        types.append(np.zeros(len(input_ids), np.int32))
        starts.append(first)
        kept.append(i)
        n_words.append(item.n_words)
    features = Features(tuple(ids), tuple(types), {"word_starts": tuple(starts)})
    return ParseInputs(features, np.asarray(kept, np.int64), np.asarray(n_words, np.int64))


def relation_vocabulary(sentences: Sequence[Sentence]) -> tuple[str, ...]:
    """The sorted set of relation labels (DEPREL, subtypes kept) of ``sentences``."""
    labels = {r for s in sentences for r in s.deprels}
    if not labels:
        raise DataError("the sentences carry no relation labels (DEPREL)")
    return tuple(sorted(labels))


def gold_labels(
    sentences: Sequence[Sentence], relations: Sequence[str]
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Training labels: ``(n_i,)`` gold heads, and ``(n_i, 2)`` gold head + relation id."""
    index = {r: k for k, r in enumerate(relations)}
    heads, rels = [], []
    for s in sentences:
        h = np.asarray(s.heads, np.int32)
        r = np.fromiter((index[d] for d in s.deprels), np.int32, count=len(s))
        heads.append(h)
        rels.append(np.stack([h, r], axis=1))
    return tuple(heads), tuple(rels)


def decode(
    arc_scores: np.ndarray, rel_scores: np.ndarray, relations: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """A sentence's tree and labels from its scores.

    Heads are the maximum spanning tree with one child of ROOT
    (:func:`~bert_repro.finetune.mst.max_spanning_tree`; the per-word softmax adds a constant
    per word, so raw scores give the same tree as log-probabilities); each word's relation is
    the best one *given its predicted head*.

    Args:
        arc_scores: ``(n, n + 1)`` arc logits of the ``n`` words.
        rel_scores: ``(n, n + 1, R)`` relation logits.
        relations: the ``R`` labels.

    Returns:
        ``(n,)`` heads (1-based, 0 = ROOT) and ``n`` relation labels.
    """
    arc = np.asarray(arc_scores, np.float64)
    arc = np.where(arc <= -1e8, -np.inf, arc)  # heads.PAD_LOGIT marks forbidden arcs
    heads = max_spanning_tree(arc)
    best = np.argmax(np.asarray(rel_scores)[np.arange(len(heads)), heads], axis=-1)
    return heads, [relations[k] for k in best]


def universal_relation(label: str) -> str:
    """``nsubj:pass`` -> ``nsubj``: the universal part of a UD relation."""
    return label.split(":", 1)[0]


def attachment_scores(
    pred_heads: Sequence[np.ndarray],
    pred_labels: Sequence[Sequence[str]],
    gold_heads: Sequence[np.ndarray],
    gold_labels: Sequence[Sequence[str]],
    punctuation: Sequence[np.ndarray] | None = None,
) -> dict:
    """Unlabelled and labelled attachment scores, summed over the corpus.

    ``UAS = #{words with the gold head} / #words``; ``LAS = #{gold head and gold relation}
    / #words``, relations compared by their universal part (CoNLL 2018).

    Args:
        pred_heads, gold_heads: per sentence ``(n_i,)`` heads, 1-based, 0 = ROOT.
        pred_labels, gold_labels: per sentence ``n_i`` relation labels.
        punctuation: per sentence ``(n_i,)`` bool, words to leave out; ``None`` scores all.

    Returns:
        ``{"uas", "las", "n_words"}`` (``n_words`` = words scored; scores NaN when 0).
    """
    n_sent = len(gold_heads)
    lists = (pred_heads, pred_labels, gold_labels) + (() if punctuation is None else (punctuation,))
    if any(len(x) != n_sent for x in lists):
        raise ValueError("predictions, gold and punctuation must have one entry per sentence")
    n = head_ok = both_ok = 0
    for k in range(n_sent):
        gh = np.asarray(gold_heads[k])
        ph = np.asarray(pred_heads[k])
        if not (len(ph) == len(gh) == len(pred_labels[k]) == len(gold_labels[k])):
            raise ValueError(f"sentence {k}: predictions and gold differ in length")
        keep = np.ones(len(gh), bool)
        if punctuation is not None:
            if len(punctuation[k]) != len(gh):
                raise ValueError(f"sentence {k}: punctuation mask differs in length")
            keep = ~np.asarray(punctuation[k], bool)
        same_head = (ph == gh) & keep
        same_rel = np.fromiter(
            (
                universal_relation(p) == universal_relation(g)
                for p, g in zip(pred_labels[k], gold_labels[k], strict=True)
            ),
            bool,
            count=len(gh),
        )
        n += int(keep.sum())
        head_ok += int(same_head.sum())
        both_ok += int((same_head & same_rel).sum())
    nan = float("nan")
    return {
        "uas": head_ok / n if n else nan,
        "las": both_ok / n if n else nan,
        "n_words": n,
    }


def parse_scores(
    sentences: Sequence[Sentence], pred_heads: Sequence[np.ndarray], pred_labels
) -> dict:
    """UAS/LAS in both conventions: every word (CoNLL 2018: ``uas``, ``las``, ``n_words``)
    and without punctuation, UPOS ``PUNCT`` (PTB: ``uas_no_punct``, ``las_no_punct``,
    ``n_words_no_punct``)."""
    gold_h = [s.heads for s in sentences]
    gold_l = [s.deprels for s in sentences]
    every = attachment_scores(pred_heads, pred_labels, gold_h, gold_l)
    punct = [np.asarray([u == "PUNCT" for u in s.upos], bool) for s in sentences]
    no_punct = attachment_scores(pred_heads, pred_labels, gold_h, gold_l, punct)
    return {
        "uas": every["uas"],
        "las": every["las"],
        "uas_no_punct": no_punct["uas"],
        "las_no_punct": no_punct["las"],
        "n_words": every["n_words"],
        "n_words_no_punct": no_punct["n_words"],
        "n_sentences": len(sentences),
    }


def check_sentences(sentences: Sequence, what: str) -> None:
    """Raise :class:`DataError` unless every item is a treebank sentence with relations."""
    for i, s in enumerate(sentences):
        if not isinstance(s, Sentence):
            raise DataError(
                f"{what} item {i} is a {type(s).__name__}, not a treebank Sentence (read the "
                "files with bert_repro.treebank.read_conllu)"
            )
        if len(s.deprels) != len(s) or any(d == "_" for d in s.deprels):
            where = f"{s.path}:{s.start_line}" if s.path else f"sentence {i}"
            raise DataError(f"{what} {where} has words without a relation (DEPREL '_')")


def predict_trees(
    model, tokenizer, sentences: Sequence[Sentence], batch_size: int
) -> tuple[list[np.ndarray], list[list[str]]]:
    """Parse ``sentences`` with a :class:`~bert_repro.finetune.model.BertTaskModel` whose head
    is a :class:`~bert_repro.finetune.biaffine.BiaffineParserHead`.

    Sentences run in length-sorted batches; each is cut at the encoder's position limit (the
    words past it get head ``-1`` and relation ``""``: never correct).

    Returns:
        Per sentence, ``(n_i,)`` predicted heads and ``n_i`` relation labels.
    """
    relations = model.head.relations
    limit = int(model.encoder.config.max_position_embeddings)
    limit = min(limit, int(getattr(tokenizer, "model_max_length", limit) or limit))
    enc = encode_sentences(tokenizer, sentences, limit, drop_long=False)
    feats = enc.features
    heads: list[np.ndarray] = [np.zeros(0, np.int64)] * len(sentences)
    labels: list[list[str]] = [[] for _ in sentences]
    for index in plan_batches(feats.lengths, batch_size):
        out = predict_batch(model, pad_inputs(feats, index, pad_id=tokenizer.pad_token_id))
        arc, rel = np.asarray(out["arc"]), np.asarray(out["rel"])
        for row, i in enumerate(index):
            n = len(feats.extra["word_starts"][i])
            h, r = decode(arc[row, :n, : n + 1], rel[row, :n, : n + 1], relations)
            missing = int(enc.n_words[i]) - n  # words past the position limit
            heads[enc.kept[i]] = np.concatenate([h, np.full(missing, -1, np.int64)])
            labels[enc.kept[i]] = r + [""] * missing
    return heads, labels
