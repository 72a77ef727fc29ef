"""What a comparison adds up while the batches stream past: per model and layer, the sum of
the texts' mean token cosines, the counts behind the average, and the token sample.

The cosine of layer ``k`` is ``cos_sum[m, k] / n_texts`` (the definition:
:mod:`bert_repro.plot.comparator`); texts with no counted wordpiece add nothing to the sum and
are counted in ``n_without``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .sampling import TokenSample
from .similarity import mean_token_cosine


@dataclass
class CosineTally:
    """Running sums of one comparison pass.

    Attributes:
        cos_sum: ``(M, L+1)`` float64, per fine-tuned model and layer, the sum over the texts
            with a counted wordpiece of their mean token cosine with the base.
        n_texts: texts with at least one counted wordpiece.
        n_tokens: counted wordpieces.
        n_without: texts with none.
        sample: the :class:`~bert_repro.plot.sampling.TokenSample` of RSA and CKA.
    """

    cos_sum: np.ndarray
    sample: TokenSample
    n_texts: int = 0
    n_tokens: int = 0
    n_without: int = 0

    @classmethod
    def empty(cls, n_models: int, n_states: int, sample_tokens: int, seed: int) -> CosineTally:
        """Zero sums for ``n_models`` fine-tuned models of ``n_states`` hidden states and an
        empty sample of ``sample_tokens`` tokens seeded by ``seed``."""
        cos_sum = np.zeros((n_models, n_states), dtype=np.float64)
        return cls(cos_sum, TokenSample(sample_tokens, seed))

    def add(self, outputs: Sequence, mask: np.ndarray, text_index: np.ndarray) -> None:
        """Add one batch.

        Args:
            outputs: per model (the base first), its ``(K, B, T, H)`` hidden states.
            mask: ``(B, T)`` bool, the counted wordpieces.
            text_index: ``(B,)`` each row's text's position in the source.
        """
        counts = mask.sum(axis=1)
        has = counts > 0
        for m in range(1, len(outputs)):
            mean_cos, _ = mean_token_cosine(outputs[0], outputs[m], mask)  # (K, B)
            self.cos_sum[m - 1] += mean_cos[:, has].sum(axis=1)
        self.n_texts += int(has.sum())
        self.n_without += int((~has).sum())
        self.n_tokens += int(counts.sum())
        self.sample.update(outputs, mask, text_index)
