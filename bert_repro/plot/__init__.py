"""Layer-wise comparison of a base BERT with fine-tuned copies: cosine, RSA, linear CKA, figures.

``from bert_repro.plot import BertComparator`` is the entry point (Merchant et al. 2020).
"""

from __future__ import annotations

from .comparator import BertComparator
from .figures import layer_similarity_figure, overview_figure
from .result import ComparisonResult
from .similarity import linear_cka, rsa

__all__ = [
    "BertComparator",
    "ComparisonResult",
    "layer_similarity_figure",
    "linear_cka",
    "overview_figure",
    "rsa",
]
