"""Tokenise, align wordpieces to words, batch by length, pad, and stream as tf.data.

Texts are tokenised once with the fast (Rust) tokenizer; which texts share a batch and the
length it is padded to come from a plan (:mod:`bert_repro.batching`: little padding, few
shapes under XLA); the batches are padded on a ``tf.data`` thread that prefetches the next
batch while the model runs on this one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .batching import Batch, round_up
from .errors import DataError, InputTooLongError, check_not_string
from .models import as_fast_tokenizer


@dataclass(frozen=True)
class Encoded:
    """One tokenised text.

    Attributes:
        input_ids: ``(T,)`` int32 wordpiece ids including ``[CLS]`` and ``[SEP]``.
        word_index: ``(T,)`` int32, the 0-based word each wordpiece belongs to, ``-1`` for
            special tokens (only for pre-split sentences; ``None`` for raw texts).
        n_words: number of words (0 for raw texts).
    """

    input_ids: np.ndarray
    word_index: np.ndarray | None = None
    n_words: int = 0

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def max_model_length(tokenizer, *models) -> int:
    """Largest number of wordpieces (specials included) the tokenizer and every one of
    ``models`` accept: models compared on the same texts (a base and fine-tuned copies saved
    with fewer positions) are limited by the smallest of them."""
    limits = [int(tokenizer.model_max_length)]
    limits += [int(m.config.max_position_embeddings) for m in models if m is not None]
    return min(limits)


def _preview(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def describe_item(item: str | Sequence[str]) -> str:
    """A short one-line preview of a text, or of a pre-split sentence's words joined, for
    error messages."""
    return _preview(item if isinstance(item, str) else " ".join(item))


def _check_lengths(
    lengths: Sequence[int], max_length: int, items, what: str, limited_by: str | None = None
) -> None:
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        i = too_long[0]
        more = f" ({len(too_long)} {what}s in all are too long)" if len(too_long) > 1 else ""
        limit = f"the model's maximum of {max_length}"
        if limited_by is not None:
            limit = f"{max_length}, the most {limited_by} accepts (the smallest of the models)"
        raise InputTooLongError(
            f"{what} {i} ({describe_item(items[i])!r}) has {lengths[i]} wordpieces with "
            f"[CLS]/[SEP], more than {limit}{more}. Split it into shorter pieces (e.g. "
            "sentences) or drop it; nothing is truncated silently."
        )


def _tokenize_texts(tokenizer, texts: list[str]) -> list[Encoded]:
    ids = tokenizer(
        texts,
        add_special_tokens=True,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )["input_ids"]
    return [Encoded(np.asarray(x, dtype=np.int32)) for x in ids]


def _as_texts(texts: Sequence[str]) -> list[str]:
    check_not_string(texts, "texts")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"text {i} is a {type(t).__name__}, not a str")
    return texts


@dataclass(frozen=True)
class EncodedCorpus:
    """A corpus tokenised once; length checks, skipping, planning, extraction and caching all
    read it instead of tokenising again.

    Attributes:
        sources: every input: raw texts, or pre-split sentences (lists of words).
        items: one :class:`Encoded` per input, in input order (too-long ones included: which
            to refuse or skip is decided by :meth:`too_long` / :meth:`check_fits`).
        words: whether the inputs are pre-split sentences (items carry word indices).
    """

    sources: list
    items: list[Encoded]
    words: bool

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        """``(n,)`` int64 wordpieces per input, ``[CLS]``/``[SEP]`` included."""
        return np.fromiter((len(e) for e in self.items), dtype=np.int64, count=len(self.items))

    def too_long(self, max_length: int) -> np.ndarray:
        """Indices of the inputs with more than ``max_length`` wordpieces."""
        return np.flatnonzero(self.lengths > int(max_length))

    def check_fits(self, max_length: int, limited_by: str | None = None) -> None:
        """Raise :class:`InputTooLongError` naming the first input longer than ``max_length``
        (``limited_by`` names the model whose positions set the limit)."""
        what = "sentence" if self.words else "text"
        _check_lengths(self.lengths, int(max_length), self.sources, what, limited_by)

    def subset(self, indices: Sequence[int]) -> EncodedCorpus:
        """The inputs at ``indices`` (in that order), without tokenising again."""
        idx = [int(i) for i in indices]
        return EncodedCorpus(
            [self.sources[i] for i in idx], [self.items[i] for i in idx], self.words
        )


def encode_corpus(tokenizer, inputs, *, words: bool) -> EncodedCorpus:
    """Tokenise raw texts (``words=False``) or pre-split sentences (``words=True``) once.

    No length is checked here: the caller decides with :meth:`EncodedCorpus.check_fits` or
    :meth:`EncodedCorpus.too_long`, against the limit of the models it will run.

    Raises:
        DataError: a bare string instead of a list, a text that is not a string, or a bad
            sentence (see :func:`as_word_lists`).
    """
    if isinstance(inputs, EncodedCorpus):
        if inputs.words != words:
            kind = "pre-split sentences" if inputs.words else "raw texts"
            raise DataError(f"this encoded corpus holds {kind}")
        return inputs
    tokenizer = as_fast_tokenizer(tokenizer)
    if words:
        sources = as_word_lists(inputs)
        items = _tokenize_words(tokenizer, sources) if sources else []
    else:
        sources = _as_texts(inputs)
        items = _tokenize_texts(tokenizer, sources) if sources else []
    return EncodedCorpus(sources, items, words)


def encode_texts(
    tokenizer,
    texts: Sequence[str],
    *,
    max_length: int | None = None,
    limited_by: str | None = None,
) -> list[Encoded]:
    """Tokenise raw texts (with ``[CLS]``/``[SEP]``) and refuse over-long ones.

    ``limited_by`` names the model whose positions set ``max_length`` (when several models
    run on the texts and the smallest limit is not the first model's) in the length error.

    Raises:
        DataError: ``texts`` is one string (not a list of them), or a text is not a string.
        InputTooLongError: a text exceeds ``max_length`` (default: the tokenizer's maximum).
    """
    tokenizer = as_fast_tokenizer(tokenizer)
    corpus = encode_corpus(tokenizer, texts, words=False)
    corpus.check_fits(max_length or max_model_length(tokenizer), limited_by)
    return corpus.items


def as_word_lists(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Check pre-split sentences and copy each into a list of words.

    Raises:
        DataError: ``sentences`` or one sentence is a string (iterating it would give
            characters, not words), a sentence is empty, or a word is not a string.
    """
    check_not_string(sentences, "sentences (lists of words)", words=True)
    out = []
    for i, s in enumerate(sentences):
        if isinstance(s, (str, bytes)):
            raise DataError(
                f"sentence {i} is a string ({_preview(s)!r}), not a list of words: pass "
                "[[word, word, ...], ...] (e.g. text.split()), or raw texts to the text functions"
            )
        s = list(s)
        if not s:
            raise DataError(f"sentence {i} has no words")
        if not all(isinstance(w, str) for w in s):
            raise DataError(f"sentence {i} is not a list of strings")
        out.append(s)
    return out


def _tokenize_words(tokenizer, sentences: list[list[str]]) -> list[Encoded]:
    """Tokenise checked word lists; a word with no wordpiece at all (only control or
    zero-width characters) becomes ``[UNK]``, so word indices stay aligned with the words."""
    batch = tokenizer(
        sentences,
        is_split_into_words=True,
        add_special_tokens=True,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    out: list[Encoded] = []
    for i, sent in enumerate(sentences):
        ids = batch["input_ids"][i]
        wids = batch.word_ids(i)
        present = {w for w in wids if w is not None}
        if len(present) != len(sent):
            fixed = [w if j in present else tokenizer.unk_token for j, w in enumerate(sent)]
            one = tokenizer(
                fixed, is_split_into_words=True, add_special_tokens=True, truncation=False
            )
            ids, wids = one["input_ids"], one.word_ids()
        word_index = np.array([-1 if w is None else w for w in wids], dtype=np.int32)
        out.append(Encoded(np.asarray(ids, dtype=np.int32), word_index, len(sent)))
    return out


def encode_words(
    tokenizer, sentences: Sequence[Sequence[str]], *, max_length: int | None = None
) -> list[Encoded]:
    """Tokenise pre-split sentences, map every wordpiece to its word, refuse over-long ones.

    A word that the tokenizer turns into no wordpiece at all (e.g. only control or zero-width
    characters) is given the tokenizer's ``[UNK]`` token, so every word has at least one piece
    and word indices stay aligned with the input words.

    Raises:
        DataError: a sentence is empty, a string, or not a list of strings (see
            :func:`as_word_lists`).
        InputTooLongError: a sentence exceeds ``max_length`` wordpieces.
    """
    tokenizer = as_fast_tokenizer(tokenizer)
    corpus = encode_corpus(tokenizer, sentences, words=True)
    corpus.check_fits(max_length or max_model_length(tokenizer))
    return corpus.items


def pad_batch(
    items: Sequence[Encoded],
    index: np.ndarray,
    *,
    pad_id: int = 0,
    pad_multiple: int = 8,
    max_length: int | None = None,
    length: int | None = None,
    word_length: int | None = None,
) -> dict[str, np.ndarray]:
    """Right-pad a batch of encoded items into arrays.

    Args:
        items: the corpus; ``index`` the positions of this batch's items in it.
        pad_multiple: without ``length``, pad to the longest item rounded up to this multiple
            (never beyond ``max_length``).
        length: pad to exactly this many wordpieces (a planned :class:`~bert_repro.batching.Batch`).
        word_length: pad the word axis to exactly this (default: the most words, rounded up
            to ``pad_multiple``).

    Returns:
        ``input_ids``, ``attention_mask``, ``token_type_ids``: ``(B, T)`` int32;
        ``index``: ``(B,)`` int64 positions of the items in the corpus; and for word-aligned
        items ``word_index`` ``(B, T)`` int32 (``-1`` on specials and padding) and
        ``word_mask`` ``(B, W)`` int32 (1 on real words).

    Raises:
        DataError: an item is longer than ``length`` or has more words than ``word_length``.
    """
    longest = max(len(items[i]) for i in index)
    if length is None:
        t = round_up(longest, pad_multiple)
        if max_length is not None:
            t = min(t, max(max_length, longest))
    elif longest > length:
        raise DataError(f"an item of {longest} wordpieces does not fit a batch of {length}")
    else:
        t = int(length)
    b = len(index)
    ids = np.full((b, t), pad_id, dtype=np.int32)
    mask = np.zeros((b, t), dtype=np.int32)
    for row, i in enumerate(index):
        n = len(items[i])
        ids[row, :n] = items[i].input_ids
        mask[row, :n] = 1
    out = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": np.zeros_like(ids),
        "index": np.asarray(index, dtype=np.int64),
    }
    if items[index[0]].word_index is not None:
        most = max(items[i].n_words for i in index)
        w = round_up(most, pad_multiple) if word_length is None else int(word_length)
        if most > w:
            raise DataError(f"an item of {most} words does not fit a batch of {w} words")
        word_index = np.full((b, t), -1, dtype=np.int32)
        word_mask = np.zeros((b, w), dtype=np.int32)
        for row, i in enumerate(index):
            n = len(items[i])
            word_index[row, :n] = items[i].word_index
            word_mask[row, : items[i].n_words] = 1
        out["word_index"] = word_index
        out["word_mask"] = word_mask
    return out


def iter_padded(
    items: Sequence[Encoded],
    plan: Sequence[Batch],
    *,
    pad_id: int = 0,
    fixed_word_length: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Padded batches of ``items`` following ``plan`` (NumPy, no TensorFlow).

    Args:
        plan: from :mod:`bert_repro.batching` (each batch padded to its planned length).
        fixed_word_length: pad the word axis to the planned length too (XLA: one shape per
            planned length), else to the batch's most words.
    """
    for batch in plan:
        yield pad_batch(
            items,
            batch.index,
            pad_id=pad_id,
            pad_multiple=1,
            length=batch.length,
            word_length=batch.length if fixed_word_length else None,
        )


def make_dataset(
    items: Sequence[Encoded],
    plan: Sequence[Batch],
    *,
    pad_id: int = 0,
    fixed_word_length: bool = False,
    prefetch: int = 2,
):
    """A ``tf.data.Dataset`` of padded batches (dicts, see :func:`pad_batch`), prefetched:
    the next batch is padded while the model runs on this one."""
    import tensorflow as tf

    words = bool(items) and items[0].word_index is not None
    spec = {
        "input_ids": tf.TensorSpec((None, None), tf.int32),
        "attention_mask": tf.TensorSpec((None, None), tf.int32),
        "token_type_ids": tf.TensorSpec((None, None), tf.int32),
        "index": tf.TensorSpec((None,), tf.int64),
    }
    if words:
        spec["word_index"] = tf.TensorSpec((None, None), tf.int32)
        spec["word_mask"] = tf.TensorSpec((None, None), tf.int32)

    def gen():
        yield from iter_padded(items, plan, pad_id=pad_id, fixed_word_length=fixed_word_length)

    return generator_dataset(gen, spec).prefetch(prefetch)


def generator_dataset(gen, output_signature):
    """``tf.data.Dataset.from_generator(gen, output_signature=...)`` with
    :func:`quiet_data_options`, after :func:`bert_repro.allocator.keep_freed_memory` (a
    generator pipeline otherwise slows every later TensorFlow computation in the process)."""
    import tensorflow as tf

    from .allocator import keep_freed_memory

    keep_freed_memory()
    ds = tf.data.Dataset.from_generator(gen, output_signature=output_signature)
    return ds.with_options(quiet_data_options())


def quiet_data_options():
    """``tf.data`` options for pipelines that feed a compute-bound model on few cores.

    tf.data's autotuner runs beside the model and, on this project's 2-core machine, halved
    the extraction rate in 4 runs out of 10 (3.4k instead of 6k tokens/s; with autotuning off,
    0 of 10: ``benchmarks/bench_extraction.py``). The pipeline is a generator and a fixed
    prefetch, so there is nothing for it to tune.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options
