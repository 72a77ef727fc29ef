"""Fine-tune a BERT on MNLI, SQuAD v1.1, AG News or dependency parsing with Keras ``fit``, and
save the encoder.

* :mod:`.config`: :class:`FinetuneConfig` and :func:`paper_defaults` (the standard BERT
  recipes, with their sources);
* :mod:`.examples`: :func:`load_task_data` (tensorflow-datasets or local files, seeded hold-out
  split); :mod:`.tasks`: :func:`get_task` (head, loss, metric per task);
* :mod:`.mnli`, :mod:`.agnews`, :mod:`.squad`: readers (AG News through the package's one
  reader, :mod:`bert_repro.agnews`), SQuAD windows and span decoding;
* :mod:`.squad_metrics`: official SQuAD v1.1 exact match / F1; :mod:`.classification`: accuracy;
* :mod:`.biaffine`: Dozat & Manning's biaffine parser head and losses; :mod:`.mst`:
  Chu-Liu/Edmonds decoding; :mod:`.parse`: treebank encoding, decoding, UAS/LAS;
* :mod:`.heads`, :mod:`.model`, :mod:`.optimization`: Keras heads, :class:`BertTaskModel`,
  AdamW with linear warm-up / decay;
* :mod:`.trainer`: :func:`finetune`, :func:`load_finetuned`, :func:`evaluate_finetuned`.

>>> from bert_repro.finetune import finetune, load_task_data, paper_defaults
>>> data = load_task_data("agnews", "../shared/data/ag-news/test.csv")   # 80 / 20 seeded split
>>> result = finetune("agnews", data=data, config=paper_defaults("agnews", max_steps=200),
...                   out_dir="models/minilm-agnews")
>>> result.metrics                                     # {"accuracy": ..., "n_examples": ...}
>>> from bert_repro.models import load_bert
>>> bert_agnews, tokenizer = load_bert("models/minilm-agnews")    # the fine-tuned encoder

Command line: ``bert-repro finetune {mnli,squad,agnews,parse}``. Names are imported on first use, so
``import bert_repro.finetune`` does not load TensorFlow.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "AGNEWS_LABELS": "agnews",
    "agnews_examples": "agnews",
    "load_agnews_tfds": "agnews",
    "read_agnews_csv": "agnews",
    "ArcLoss": "biaffine",
    "BiaffineParserHead": "biaffine",
    "RelationLoss": "biaffine",
    "ClassificationExample": "classification",
    "accuracy": "classification",
    "encode_classification": "classification",
    "TASKS": "config",
    "FinetuneConfig": "config",
    "paper_defaults": "config",
    "ClassificationHead": "heads",
    "SpanHead": "heads",
    "MNLI_LABELS": "mnli",
    "load_mnli_tfds": "mnli",
    "read_mnli_tsv": "mnli",
    "BertTaskModel": "model",
    "LinearWarmupDecay": "optimization",
    "build_optimizer": "optimization",
    "max_spanning_tree": "mst",
    "attachment_scores": "parse",
    "parse_scores": "parse",
    "holdout_split": "sources",
    "SquadExample": "squad",
    "load_squad_tfds": "squad",
    "make_squad_features": "squad",
    "read_squad_json": "squad",
    "exact_match": "squad_metrics",
    "f1_score": "squad_metrics",
    "normalize_answer": "squad_metrics",
    "squad_scores": "squad_metrics",
    "TaskData": "examples",
    "get_task": "tasks",
    "ParseTask": "tasks",
    "load_task_data": "examples",
    "FinetuneResult": "trainer",
    "evaluate_finetuned": "trainer",
    "finetune": "trainer",
    "load_finetuned": "trainer",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
