"""A seeded uniform sample of token positions, kept while batches stream past.

Each token gets a pseudo-random 64-bit priority that depends only on ``(seed, text index,
position in the text)``; the sample is the ``size`` tokens of lowest priority ("bottom-k"
sampling, a uniform sample without replacement). Because a token's priority does not depend on
which batch it arrives in, the sample is the same whatever the batch size, the batch order or
the padding.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014), elementwise on uint64 arrays."""
    x = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (x ^ (x >> np.uint64(31))) & _MASK64


def token_priorities(seed: int, text_index: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Pseudo-random ``uint64`` priority of each token, a pure function of its identity.

    Args:
        seed: the sample's seed.
        text_index: ``(N,)`` index of each token's text in the corpus.
        position: ``(N,)`` the token's position inside its text (0 = ``[CLS]``).

    Returns:
        ``(N,)`` uint64 priorities; equal inputs give equal outputs.
    """
    with np.errstate(over="ignore"):
        h = _splitmix64(np.full(np.shape(text_index), seed, dtype=np.uint64))
        h = _splitmix64(h ^ np.asarray(text_index, dtype=np.uint64))
        return _splitmix64(h ^ np.asarray(position, dtype=np.uint64))


class TokenSample:
    """Bottom-k sample of tokens with their vectors from several models and layers.

    Args:
        size: tokens to keep (the sample is smaller if fewer tokens stream past).
        seed: seed of the token priorities.

    Memory: ``n_models * n_layers * size * hidden`` float32 (e.g. 3 x 13 x 2000 x 768 x 4 B
    = 240 MB for bert-base with two fine-tuned models).
    """

    def __init__(self, size: int, seed: int = 0):
        if not isinstance(size, (int, np.integer)) or size < 0:
            raise ConfigError(f"sample size must be a non-negative int, got {size!r}")
        self.size = int(size)
        self.seed = int(seed)
        self.filled = 0
        self.seen = 0
        self._priority = np.full(self.size, np.iinfo(np.uint64).max, dtype=np.uint64)
        self._vectors: np.ndarray | None = None  # (M, K, size, H)

    def update(self, outputs: list[np.ndarray], mask: np.ndarray, text_index: np.ndarray) -> None:
        """Offer the counted tokens of one batch to the sample.

        Args:
            outputs: one ``(K, B, T, H)`` array per model, for the same batch.
            mask: ``(B, T)`` tokens that may be sampled (never padding).
            text_index: ``(B,)`` the corpus index of each row's text.
        """
        rows, cols = np.nonzero(np.asarray(mask, dtype=bool))
        self.seen += rows.size
        if self.size == 0 or rows.size == 0:
            return
        prio = token_priorities(self.seed, np.asarray(text_index)[rows], cols)
        if self.filled == self.size:  # only tokens below the current maximum can enter
            keep = prio < self._priority.max()
            rows, cols, prio = rows[keep], cols[keep], prio[keep]
            if prio.size == 0:
                return
        if self._vectors is None:
            k, _, _, h = outputs[0].shape
            self._vectors = np.zeros((len(outputs), k, self.size, h), dtype=np.float32)
        old = self._priority[: self.filled]
        combined = np.concatenate([old, prio])
        if combined.size > self.size:
            chosen = np.argpartition(combined, self.size - 1)[: self.size]
        else:
            chosen = np.arange(combined.size)
        kept_old = np.zeros(self.filled, dtype=bool)
        kept_old[chosen[chosen < self.filled]] = True
        entering = chosen[chosen >= self.filled] - self.filled
        free = np.concatenate([np.flatnonzero(~kept_old), np.arange(self.filled, self.size)])
        slots = free[: entering.size]
        for m, out in enumerate(outputs):
            self._vectors[m][:, slots] = out[:, rows[entering], cols[entering]]
        self._priority[slots] = prio[entering]
        self.filled = min(self.size, self.filled + entering.size)

    def vectors(self) -> np.ndarray:
        """``(M, K, n, H)`` the sampled tokens' vectors, ordered by priority (``n <= size``)."""
        if self._vectors is None:
            return np.zeros((0, 0, 0, 0), dtype=np.float32)
        order = np.argsort(self._priority[: self.filled], kind="stable")
        return self._vectors[:, :, order]
