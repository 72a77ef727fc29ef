"""SQuAD v1.1 exact match and F1, as the official evaluation script computes them.

The official ``evaluate-v1.1.py`` (Rajpurkar et al., 2016) normalises both strings (lower-case,
drop punctuation, drop the articles *a*, *an*, *the*, collapse whitespace), then scores

* exact match: ``normalise(prediction) == normalise(gold)``;
* F1 over bags of normalised tokens: with ``c = |pred ∩ gold|`` (multiset intersection),
  ``P = c / |pred|``, ``R = c / |gold|``, ``F1 = 2PR / (P + R)``, and ``F1 = 0`` when ``c = 0``
  (so two empty answers score 0, as in v1.1; the v2.0 script differs there);

takes the maximum of each over the question's gold answers, and reports the mean over all
questions in percent. A question without a prediction scores 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, remove punctuation, articles and extra whitespace (official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-bag F1 between the normalised prediction and gold answer (0 when nothing shared)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    n_same = sum(common.values())
    if n_same == 0:
        return 0.0
    precision = n_same / len(pred_tokens)
    recall = n_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def max_over_gold(
    metric: Callable[[str, str], float], prediction: str, golds: Iterable[str]
) -> float:
    """The best score of ``prediction`` against any of the gold answers."""
    return max(metric(prediction, gold) for gold in golds)


def squad_scores(
    predictions: Mapping[str, str], gold_answers: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Corpus exact match and F1 in percent, as ``evaluate-v1.1.py`` reports them.

    Args:
        predictions: question id -> predicted answer text.
        gold_answers: question id -> its gold answer texts (at least one each); every question
            here counts, a missing prediction scores 0.

    Returns:
        ``{"exact_match": ..., "f1": ..., "n_questions": ...}``; EM and F1 are in ``[0, 100]``.
    """
    em = f1 = 0.0
    for qid, golds in gold_answers.items():
        if not golds:
            raise ValueError(f"question {qid!r} has no gold answer")
        if qid not in predictions:
            continue
        em += max_over_gold(exact_match, predictions[qid], golds)
        f1 += max_over_gold(f1_score, predictions[qid], golds)
    n = len(gold_answers)
    return {
        "exact_match": 100.0 * em / n if n else float("nan"),
        "f1": 100.0 * f1 / n if n else float("nan"),
        "n_questions": n,
    }
