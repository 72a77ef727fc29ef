"""Layer ablations of fine-tuned BERTs (Merchant et al. 2020, "What Happens To BERT Embeddings
During Fine-tuning?"): which layers' changes does a task need, and how far up must it reach?

* :func:`restore_layers` (:mod:`.restore`): put the base model's weights back into the bottom
  (embeddings + layers ``0..k-1``) or top (layers ``L-k..L-1``) ``k`` layers of a fine-tuned
  model, keep its head, score the task metric for ``k = 0..L``;
* :func:`freeze_sweep` (:mod:`.freeze`): fine-tune with the embeddings and the bottom ``k``
  layers frozen (``FinetuneConfig.freeze_layers``), for several ``k``;
* :mod:`.swap`: the weight mix as a pure function (:func:`mix_weights`) and its in-place,
  undone-on-exit application (:func:`restored`); the parts and the ``k`` rule are in
  :mod:`bert_repro.encoder_parts`;
* :class:`AblationResult` (:mod:`.result`): the table (``results.json`` / ``results.csv``) and
  the figures (:func:`ablation_figure`, :mod:`.figures`).

>>> from bert_repro.ablate import restore_layers, freeze_sweep
>>> res = restore_layers("models/minilm-agnews")          # base and data from finetune.json
>>> res.value(mode="restore", direction="top", k=2, metric="accuracy")
>>> res.save("runs/ablate-restore")
>>> from bert_repro.finetune import load_task_data, paper_defaults
>>> data = load_task_data("agnews", "../shared/data/ag-news/test.csv")
>>> freeze_sweep("agnews", data=data, ks=(0, 2, 4),
...              config=paper_defaults("agnews", max_steps=200)).save("runs/ablate-freeze")

Command line: ``bert-repro ablate {restore,freeze}``. Names are imported on first use, so
``import bert_repro.ablate`` does not load TensorFlow.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "AblationResult": "result",
    "metric_values": "result",
    "ablation_figure": "figures",
    "freeze_sweep": "freeze",
    "recorded_eval_data": "eval_data",
    "recorded_base": "restore",
    "restore_layers": "restore",
    "check_same_architecture": "swap",
    "encoder_arrays": "swap",
    "mix_weights": "swap",
    "restored": "swap",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
