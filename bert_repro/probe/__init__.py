"""Structural probes (Hewitt & Manning, NAACL 2019) on BERT's layers.

* :mod:`.model`: :class:`TwoWordProbe` (squared distances) and :class:`OneWordProbe` (squared
  norms), Keras models;
* :mod:`.loss`: the per-sentence normalised L1 losses and masks (:func:`build_label_mask`);
* :mod:`.data`: :class:`ProbeDataset`, gold trees of a CoNLL-U file with cached word features;
* :mod:`.trainer`: :func:`train_probe` (Adam, LR decay on plateau, best dev epoch, early stop);
* :mod:`.metrics`: UUAS, DSpr, root accuracy, NSpr as pure NumPy functions;
* :mod:`.sweep`: every layer of every model, results as JSON/CSV, resumable; :mod:`.figures`;
* :mod:`.edge`: :func:`run_edge_probes`, edge probes (Tenney et al. 2019: POS, dependency
  relations; :class:`StackedEdgeProbes`, :func:`train_edge_probes`) on every layer and on
  scalar mixes (:mod:`.scalar_mix`: mix weights, expected layers), micro F1.

Names are imported on first use, so ``import bert_repro.probe`` does not load TensorFlow.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "TwoWordProbe": "model",
    "OneWordProbe": "model",
    "make_probe": "model",
    "save_probe": "model",
    "load_probe": "model",
    "ProbeDataset": "data",
    "build_label_mask": "loss",
    "distance_loss": "loss",
    "depth_loss": "loss",
    "L1DistanceLoss": "loss",
    "L1DepthLoss": "loss",
    "train_probe": "trainer",
    "train_probes": "joint",
    "SweepSettings": "config",
    "predict": "trainer",
    "evaluate_probe": "trainer",
    "uuas": "metrics",
    "dspr": "metrics",
    "root_accuracy": "metrics",
    "nspr": "metrics",
    "run_sweep": "sweep",
    "evaluate_saved": "sweep",
    "run_edge_probes": "edge",
    "EdgeSettings": "edge_config",
    "StackedEdgeProbes": "edge_model",
    "train_edge_probes": "edge_train",
    "edge_examples": "edge_data",
    "micro_f1": "metrics",
    "mix_weights": "scalar_mix",
    "scalar_mix": "scalar_mix",
    "expected_layer": "scalar_mix",
    "cumulative_expected_layer": "scalar_mix",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
