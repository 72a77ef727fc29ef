"""Get models ready for probing: check them from their configs, read the treebanks, load a
model, drop the sentences it cannot take, extract every split's word features into the cache
(once per model, tokenizer and corpus), and free the encoder before the probes train.

Shared by :func:`bert_repro.probe.sweep.run_sweep` and
:func:`bert_repro.probe.sweep.evaluate_saved`.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..settings import ExtractionSettings
from .data import ProbeDataset
from .layers import unique_layers
from .specs import ModelSpec

Log = Callable[[str], None]


def load_splits(
    paths: Mapping[str, str | os.PathLike | None],
    limit: int | None,
    cache_dir: str | os.PathLike | None,
) -> dict[str, ProbeDataset]:
    """``{split: dataset}`` of the given CoNLL-U files (first ``limit`` sentences each);
    splits whose path is None are left out."""
    out = {}
    for name, path in paths.items():
        if path is None:
            continue
        ds = ProbeDataset(path, cache_dir=cache_dir)
        out[name] = ds.subset(range(min(limit, len(ds)))) if limit else ds
    return out


def check_models(specs: Sequence[ModelSpec], layers: Sequence[int] | None) -> None:
    """Every model exists and has the layers asked for: checked from the configs (no weights
    loaded), so a bad last model or layer fails now, not hours into the sweep."""
    from ..models import model_config

    for spec in specs:
        config = model_config(spec.source)
        try:
            unique_layers(layers, int(config.num_hidden_layers) + 1)
        except ConfigError as err:
            raise ConfigError(f"model {spec.label}: {err}") from None


def drop_too_long(ds: ProbeDataset, model, tokenizer, too_long: str, log: Log) -> ProbeDataset:
    """``ds`` without the sentences longer than the model accepts, each listed through
    ``log`` (``too_long="skip"``); unchanged with ``"error"`` (the features then refuse them,
    naming the first)."""
    if too_long != "skip":
        return ds
    bad = set(ds.too_long(model, tokenizer))
    if not bad:
        return ds
    for i in sorted(bad):
        s = ds.sentences[i]
        log(f"  skipping too-long sentence {s.sent_id or i} ({s.path}:{s.start_line})")
    return ds.subset([i for i in range(len(ds)) if i not in bad])


@dataclass
class ProbeTarget:
    """A loaded model and what identifies it; :meth:`features` readies its probe data.

    Attributes:
        spec: its label and source.
        num_layers, hidden: from its config.
        fingerprint, tokenizer_fingerprint: content hashes (weights, vocabulary).
        splits, stores: after :meth:`features`, the filtered datasets and their caches.
    """

    spec: ModelSpec
    model: object
    tokenizer: object
    num_layers: int
    hidden: int
    fingerprint: str
    tokenizer_fingerprint: str
    splits: dict[str, ProbeDataset] = field(default_factory=dict)
    stores: dict = field(default_factory=dict)

    def layers(self, layers: Sequence[int] | None) -> tuple[int, ...]:
        """The hidden states asked for, resolved against this model, each once."""
        return unique_layers(layers, self.num_layers + 1)

    def holds_every_row(self) -> bool:
        """Whether every split's features are all here (not so for a multi-worker worker
        whose entry lacks the rows the chief's cache already had)."""
        return all(store.complete for store in self.stores.values())

    def training_strategy(self, strategy, log: Log) -> tuple[bool, object]:
        """After :meth:`features`: ``(trains, strategy)``, whether this process trains the
        probes and under which strategy.

        Every worker of a multi-worker ``strategy`` trains (each its rows of every batch) when
        all hold every feature, as on a first run; when one lacks some (restarted after the
        chief's cache was filled) the chief trains alone, on one device. A collective under
        multi-worker: every worker calls it.
        """
        from ..distribute import is_chief, on_every_worker

        if on_every_worker(strategy, self.holds_every_row()):
            if strategy is not None and strategy.num_replicas_in_sync > 1:
                log(f"  the probes train on {strategy.num_replicas_in_sync} replicas")
            return True, strategy
        return is_chief(strategy), None

    def features(
        self,
        splits: Mapping[str, ProbeDataset],
        too_long: str,
        extraction: ExtractionSettings,
        log: Log,
    ) -> None:
        """Filter each split, extract its word features (from the cache when there), then
        free the encoder: the probes read the cache only (bert-base: 0.4 GB less)."""
        t0 = time.monotonic()
        for name, ds in splits.items():
            ds = drop_too_long(ds, self.model, self.tokenizer, too_long, log)
            log(f"  features of {name} ({len(ds)} sentences)")
            self.splits[name] = ds
            self.stores[name] = ds.features(self.model, self.tokenizer, settings=extraction)
        log(f"  features ready ({time.monotonic() - t0:.0f}s)")
        self.model = self.tokenizer = None
        gc.collect()


def load_target(spec: ModelSpec, extraction: ExtractionSettings) -> ProbeTarget:
    """Load ``spec``'s model (in ``extraction``'s precision, in its strategy's scope when it
    has one) and fingerprint it."""
    from ..models import load_bert, model_dims, model_fingerprint, tokenizer_fingerprint

    model, tokenizer = load_bert(
        spec.source, strategy=extraction.strategy, precision=extraction.precision
    )
    num_layers, hidden = model_dims(model)
    return ProbeTarget(
        spec,
        model,
        tokenizer,
        num_layers,
        hidden,
        model_fingerprint(model),
        tokenizer_fingerprint(tokenizer),
    )
