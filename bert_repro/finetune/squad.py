"""SQuAD v1.1 (Rajpurkar et al., 2016): examples, windowed features and answer-span decoding.

Features follow BERT's ``run_squad.py`` (Devlin et al., 2019):

* the question is cut to ``max_query_length`` wordpieces;
* the context's wordpieces are cut into windows of ``W = max_seq_length - |q| - 3`` pieces whose
  starts are ``doc_stride`` apart (BERT's meaning of the stride: the step between windows; the
  Hugging Face tokenizer's ``stride`` argument is the *overlap*, so windows are built here from
  the context's own tokenisation, which for WordPiece is the same as inside the pair);
* each window is ``[CLS] q [SEP] window [SEP]`` with token types 0 then 1;
* for training, the first gold answer's characters are mapped to wordpiece positions through
  the tokenizer's character offsets; a window that does not hold the whole answer points both
  positions at ``[CLS]`` (index 0), as BERT does for v1.1.

Decoding: in each window, the span ``i <= j < i + max_answer_length`` over context tokens with
the largest ``start_i + end_j`` where ``i`` is a token seen with its maximum context in this
window (BERT's ``_check_is_max_context``: the window where ``min(left, right) + 0.01 W`` is
largest); the best span over an example's windows gives the answer, cut from the original
context by character offsets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import as_text, tfds_records
from ..errors import DataError
from ..text import read_utf8
from .dataset import Features

TFDS_NAME = "squad/v1.1"
TRAIN_SPLIT = "train"  # 87,599 questions
EVAL_SPLIT = "validation"  # 10,570 questions


@dataclass(frozen=True)
class SquadExample:
    """One question on one context with its gold answers.

    Attributes:
        id: the question id.
        question: the question text.
        context: the paragraph.
        answers: gold answer texts (SQuAD dev has up to 3+, train exactly 1).
        answer_starts: character offset of each answer in ``context``.
        title: the article title.
    """

    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    title: str = ""


def read_squad_json(path: str | os.PathLike) -> list[SquadExample]:
    """Read a SQuAD-format JSON file (``data[].paragraphs[].qas[]``, v1.1 answers).

    Raises:
        DataError: missing file, not UTF-8, bad JSON (with its line), an article, paragraph or
            question list of the wrong type, or a question lacking ``id``/``question``/answers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    try:
        doc = json.loads(read_utf8(path))
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON: {err}", path=path, line=err.lineno) from err
    except RecursionError:
        raise DataError("not valid JSON: nested too deeply", path=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError("expected a SQuAD file: an object with a 'data' list", path=path)
    examples = []
    for a, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs", []) if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"data[{a}] is not an article with a 'paragraphs' list", path=path)
        for p, para in enumerate(paragraphs):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str):
                raise DataError(f"data[{a}].paragraphs[{p}] has no 'context' string", path=path)
            qas = para.get("qas", [])
            if not isinstance(qas, list):
                raise DataError(f"data[{a}].paragraphs[{p}].qas is not a list", path=path)
            for q, qa in enumerate(qas):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                try:
                    answers = qa["answers"]
                    examples.append(
                        SquadExample(
                            id=str(qa["id"]),
                            question=str(qa["question"]),
                            context=context,
                            answers=tuple(str(x["text"]) for x in answers),
                            answer_starts=tuple(int(x["answer_start"]) for x in answers),
                            title=str(article.get("title", "")),
                        )
                    )
                except (KeyError, TypeError, ValueError) as err:
                    raise DataError(f"{where} is malformed ({err!r})", path=path) from err
                if not answers:
                    raise DataError(f"{where} ({qa['id']}) has no answers (SQuAD v2?)", path=path)
    if not examples:
        raise DataError("no questions", path=path)
    return examples


def load_squad_tfds(
    split: str = TRAIN_SPLIT, *, data_dir: str | os.PathLike | None = None
) -> list[SquadExample]:
    """Read a tensorflow-datasets ``squad/v1.1`` split (``id``, ``title``, ``context``,
    ``question``, ``answers: {text, answer_start}``)."""
    examples = []
    for r in tfds_records(TFDS_NAME, split, data_dir=data_dir):
        texts = [as_text(t) for t in r["answers"]["text"]]
        starts = [int(s) for s in r["answers"]["answer_start"]]
        n = min(len(texts), len(starts))
        examples.append(
            SquadExample(
                id=as_text(r["id"]),
                question=as_text(r["question"]),
                context=as_text(r["context"]),
                answers=tuple(texts[:n]),
                answer_starts=tuple(starts[:n]),
                title=as_text(r["title"]),
            )
        )
    if not examples:
        raise DataError(f"{TFDS_NAME} split {split!r} is empty")
    return examples


def gold_answers(examples: Sequence[SquadExample]) -> dict[str, tuple[str, ...]]:
    """Question id -> gold answer texts."""
    return {ex.id: ex.answers for ex in examples}


# ----------------------------------------------------------------------------- windows


def window_starts(n_tokens: int, window: int, doc_stride: int) -> list[int]:
    """Starts of BERT's context windows: ``0, s, 2s, ...`` until a window reaches the end.

    Every token ``0..n_tokens-1`` is in at least one window ``[start, start + window)``.
    """
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    starts, start = [], 0
    while start < n_tokens:
        starts.append(start)
        if start + window >= n_tokens:
            break
        start += min(window, doc_stride)
    return starts


def max_context_mask(starts: Sequence[int], window: int, n_tokens: int) -> list[np.ndarray]:
    """For each window, which of its tokens have their maximum context in it.

    A token at context position ``p`` in window ``[s, e]`` scores ``min(p - s, e - p) + 0.01 ·
    (e - s + 1)``; it belongs to the first window of highest score (BERT's
    ``_check_is_max_context``).

    Returns:
        One boolean array per window, of the window's length.
    """
    best = np.full(n_tokens, -np.inf)
    owner = np.full(n_tokens, -1)
    for w, s in enumerate(starts):
        e = min(s + window, n_tokens) - 1
        p = np.arange(s, e + 1)
        score = np.minimum(p - s, e - p) + 0.01 * (e - s + 1)
        better = score > best[p]
        best[p[better]] = score[better]
        owner[p[better]] = w
    return [owner[s : min(s + window, n_tokens)] == w for w, s in enumerate(starts)]


def answer_token_span(
    offsets: np.ndarray, char_start: int, char_end: int
) -> tuple[int, int] | None:
    """First and last token whose characters overlap ``[char_start, char_end)``.

    Args:
        offsets: ``(n, 2)`` character ``[start, end)`` of each context token.

    Returns:
        ``(first, last)`` token indices, or ``None`` when no token overlaps.
    """
    overlap = (offsets[:, 1] > char_start) & (offsets[:, 0] < char_end)
    hits = np.flatnonzero(overlap)
    if hits.size == 0:
        return None
    return int(hits[0]), int(hits[-1])


def _answer_found(example: SquadExample) -> tuple[int, int] | None:
    """Character span of the first answer if the context holds it there (whitespace-agnostic)."""
    if not example.answers:
        return None
    start = example.answer_starts[0]
    end = start + len(example.answers[0])
    if start < 0 or end > len(example.context):
        return None
    if example.context[start:end].split() != example.answers[0].split():
        return None
    return start, end


@dataclass(frozen=True)
class SquadFeatures:
    """Windowed model inputs of SQuAD examples.

    Attributes:
        features: ``F`` model inputs (one per window).
        example_index: ``(F,)`` index of each window's example.
        start_positions: ``(F,)`` int32 answer start token (0 = ``[CLS]`` when the window does
            not hold the answer, or for evaluation features).
        end_positions: ``(F,)`` int32 answer end token (inclusive), likewise.
        offsets: per window, ``(T_f, 2)`` int32 character span of each token in the context,
            ``-1`` on question and special tokens (evaluation features only).
        start_allowed: per window, ``(T_f,)`` bool: a context token with its maximum context
            here (evaluation features only).
        end_allowed: per window, ``(T_f,)`` bool: a context token (evaluation features only).
        skipped: ids of training examples left out because their answer text is not at its
            ``answer_start`` in the context.
    """

    features: Features
    example_index: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    offsets: tuple[np.ndarray, ...] = ()
    start_allowed: tuple[np.ndarray, ...] = ()
    end_allowed: tuple[np.ndarray, ...] = ()
    skipped: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.features)


def make_squad_features(
    tokenizer,
    examples: Sequence[SquadExample],
    *,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    training: bool,
) -> SquadFeatures:
    """Cut each example into ``[CLS] question [SEP] window [SEP]`` inputs (module docstring).

    Args:
        tokenizer: a fast BERT tokenizer (character offsets are needed).
        examples: the questions.
        max_seq_length: wordpieces per input, specials included.
        doc_stride: step between the starts of consecutive context windows.
        max_query_length: questions are cut to this many wordpieces.
        training: label answer positions (skipping examples whose answer is not found) or
            keep what decoding needs (offsets and allowed positions).

    Raises:
        DataError: a question leaves no room for context, or nothing is left to train on.
    """
    if not examples:
        raise DataError("no SQuAD examples")
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    questions = tokenizer(
        [ex.question.lstrip() for ex in examples], add_special_tokens=False, verbose=False
    )["input_ids"]
    contexts = sorted({ex.context for ex in examples})
    enc = tokenizer(contexts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    tokenised = {
        c: (np.asarray(ids, np.int32), np.asarray(off, np.int32).reshape(-1, 2))
        for c, ids, off in zip(contexts, enc["input_ids"], enc["offset_mapping"], strict=True)
    }
    ids_out, types_out, ex_index, starts_out, ends_out = [], [], [], [], []
    offsets_out, start_ok_out, end_ok_out, skipped = [], [], [], []
    for k, ex in enumerate(examples):
        q = np.asarray(questions[k][:max_query_length], np.int32)
        window = max_seq_length - len(q) - 3
        if window < 1:
            raise DataError(
                f"question {ex.id} takes {len(q)} wordpieces and leaves no room for context in "
                f"max_seq_length={max_seq_length}; raise it or lower max_query_length"
            )
        ctx_ids, ctx_off = tokenised[ex.context]
        span = None
        if training:
            chars = _answer_found(ex)
            span = None if chars is None else answer_token_span(ctx_off, *chars)
            if span is None:
                skipped.append(ex.id)
                continue
        starts = window_starts(len(ctx_ids), window, doc_stride)
        is_max = max_context_mask(starts, window, len(ctx_ids))
        head = len(q) + 2  # [CLS] q [SEP]
        for s, max_ctx in zip(starts, is_max, strict=True):
            piece = ctx_ids[s : s + window]
            n = len(piece)
            ids_out.append(
                np.concatenate([[cls_id], q, [sep_id], piece, [sep_id]]).astype(np.int32)
            )
            types_out.append(np.concatenate([np.zeros(head, np.int32), np.ones(n + 1, np.int32)]))
            ex_index.append(k)
            if training and span[0] >= s and span[1] < s + n:
                starts_out.append(span[0] - s + head)
                ends_out.append(span[1] - s + head)
            else:
                starts_out.append(0)
                ends_out.append(0)
            if not training:
                t = head + n + 1
                off = np.full((t, 2), -1, np.int32)
                off[head : head + n] = ctx_off[s : s + n]
                start_ok = np.zeros(t, bool)
                start_ok[head : head + n] = max_ctx
                end_ok = np.zeros(t, bool)
                end_ok[head : head + n] = True
                offsets_out.append(off)
                start_ok_out.append(start_ok)
                end_ok_out.append(end_ok)
    if training and not ids_out:
        raise DataError(
            f"no SQuAD training example has its answer text at its answer_start "
            f"({len(skipped)} skipped, e.g. {skipped[:3]})"
        )
    return SquadFeatures(
        features=Features(tuple(ids_out), tuple(types_out)),
        example_index=np.asarray(ex_index, np.int64),
        start_positions=np.asarray(starts_out, np.int32),
        end_positions=np.asarray(ends_out, np.int32),
        offsets=tuple(offsets_out),
        start_allowed=tuple(start_ok_out),
        end_allowed=tuple(end_ok_out),
        skipped=tuple(skipped),
    )


# ----------------------------------------------------------------------------- decoding


def best_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    start_allowed: np.ndarray,
    end_allowed: np.ndarray,
    max_answer_length: int,
) -> tuple[float, int, int] | None:
    """The span ``(i, j)``, ``i <= j < i + max_answer_length``, maximising ``s_i + e_j``.

    Args:
        start_logits, end_logits: ``(T,)`` logits of one window.
        start_allowed, end_allowed: ``(T,)`` bool, positions a span may start / end at.
        max_answer_length: longest span ``L`` in tokens.

    Returns:
        ``(score, i, j)`` with the first maximum in ``(i, j)`` order, or ``None`` when no
        allowed span exists.
    """
    length = int(max_answer_length)
    s = np.where(start_allowed, np.asarray(start_logits, np.float64), -np.inf)
    e = np.where(end_allowed, np.asarray(end_logits, np.float64), -np.inf)
    if s.size == 0:
        return None
    padded = np.concatenate([e, np.full(length - 1, -np.inf)])
    ends = np.lib.stride_tricks.sliding_window_view(padded, length)  # (T, L): e[i + k]
    scores = s[:, None] + ends  # (T, L)
    flat = int(np.argmax(scores))
    i, k = divmod(flat, length)
    best = scores[i, k]
    if not np.isfinite(best):
        return None
    return float(best), i, i + k


def predict_answers(
    examples: Sequence[SquadExample],
    features: SquadFeatures,
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    max_answer_length: int,
) -> dict[str, str]:
    """The best-scoring span over each example's windows, as text cut from its context.

    Args:
        examples: the examples ``features`` were made from (with ``training=False``).
        features: their evaluation features.
        start_logits, end_logits: one ``(T_f,)`` array per feature.
        max_answer_length: longest answer in wordpieces.

    Returns:
        Question id -> answer text (``""`` when no window has a context token).
    """
    if not features.offsets and len(features):
        raise ValueError("these are training features; make them with training=False")
    best: dict[int, tuple[float, int, int, int]] = {}
    for f, k in enumerate(features.example_index):
        span = best_span(
            start_logits[f],
            end_logits[f],
            features.start_allowed[f],
            features.end_allowed[f],
            max_answer_length,
        )
        if span is not None and (k not in best or span[0] > best[k][0]):
            best[int(k)] = (span[0], f, span[1], span[2])
    answers = {}
    for k, ex in enumerate(examples):
        if k not in best:
            answers[ex.id] = ""
            continue
        _, f, i, j = best[k]
        off = features.offsets[f]
        answers[ex.id] = ex.context[off[i, 0] : off[j, 1]]
    return answers
