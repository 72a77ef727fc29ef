"""Fine-tuning hyper-parameters and the paper's defaults for each task.

Merchant et al. (2020, "What Happens To BERT Embeddings During Fine-tuning?") fine-tune
bert-base-uncased on MNLI and SQuAD v1.1 with the standard BERT recipes; the defaults here are
those recipes:

============  ======  =====  ======  =======  ======  =======  ================================
task          lr      batch  epochs  max len  stride  warm-up  source
============  ======  =====  ======  =======  ======  =======  ================================
``mnli``      2e-5    32     3       128      --      10 %     Devlin et al. 2019, §4.1 / A.3
                                                               (GLUE: batch 32, 3 epochs, lr
                                                               from {5,4,3,2}e-5); google-
                                                               research/bert ``run_classifier``
``squad``     3e-5    32     2       384      128     10 %     google-research/bert README
                                                               ``run_squad`` v1.1 (lr 3e-5,
                                                               2 epochs, 384 / 128); batch 32
                                                               as Devlin et al. §4.2
``agnews``    2e-5    32     3       128      --      10 %     not in the paper: the GLUE recipe
                                                               above, applied to AG News
``parse``     5e-5    32     3       128      --      10 %     not given by Merchant et al.:
                                                               the GLUE recipe with the top of
                                                               its rate grid (the head starts
                                                               from scratch); the head is Dozat
                                                               & Manning 2017's (arc MLP 500,
                                                               relation MLP 100, dropout 0.33),
                                                               its rate x20 (SuPar's lr_rate)
============  ======  =====  ======  =======  ======  =======  ================================

Common to all (BERT's ``optimization.py``): AdamW with ``beta_1=0.9, beta_2=0.999,
epsilon=1e-6``, weight decay 0.01 on every weight except biases and LayerNorm, the learning rate
rising linearly from 0 over the first 10 % of the steps and falling linearly to 0 at the last,
gradients clipped to global norm 1.0, dropout 0.1 (the encoder's ``hidden_dropout_prob``) on the
classifier input (the parser: ``dropout`` after its MLPs). SQuAD answers are at most 30
wordpieces and questions are cut to 64. A parse batch holds ``batch_size`` sentences.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError, check_choice

TaskName = Literal["mnli", "squad", "agnews", "parse"]
TASKS: tuple[str, ...] = ("mnli", "squad", "agnews", "parse")


@dataclass(frozen=True)
class FinetuneConfig:
    """Resolved hyper-parameters of one fine-tuning run (see the module docstring for sources).

    Attributes:
        learning_rate: peak learning rate of the linear warm-up / linear decay schedule.
        batch_size: global batch size (split over the replicas of a distribution strategy).
        epochs: passes over the training features (may be fractional).
        max_seq_length: wordpieces per input, ``[CLS]``/``[SEP]`` included; longer inputs are
            truncated (classification: longest-first; SQuAD: the context is cut into windows).
        doc_stride: SQuAD only, step in wordpieces between the starts of consecutive context
            windows (BERT's meaning; a step longer than a window is cut to the window).
        max_query_length: SQuAD only, questions are cut to this many wordpieces.
        max_answer_length: SQuAD only, longest predicted answer in wordpieces.
        warmup_fraction: share of the steps over which the learning rate rises from 0.
        weight_decay: decoupled weight decay (AdamW), not applied to biases and LayerNorm.
        adam_epsilon: Adam's epsilon.
        clip_norm: gradients are clipped to this global norm (``None``: no clipping).
        dropout: dropout before the classification layer; ``None`` uses the encoder's
            ``hidden_dropout_prob``.
        max_steps: cap on the optimizer steps (for CPU runs); the schedule is laid over the
            steps actually run.
        seed: seeds the Python, NumPy and TensorFlow generators (head init, dropout, shuffling).
        eval_batch_size: batch size for predictions on the evaluation split.
        log_every: steps per logged training-loss value; ``None``: one data epoch.
        arc_mlp_size: parse only, units of the biaffine parser's arc MLPs.
        rel_mlp_size: parse only, units of its relation MLPs.
        head_lr_multiplier: the task head's learning rate is this many times
            ``learning_rate`` (same schedule); 1 for every task but ``parse`` (20, as SuPar's
            BERT parsers: a parser head from scratch learns slowly at BERT's rates).
        freeze_layers: keep the embeddings and the bottom ``k`` encoder layers at their
            pre-trained values (0: train everything; ``k >= 1``: embeddings + layers
            ``0..k-1``, as :func:`bert_repro.encoder_parts.ablated_parts`); at most the
            model's number of layers.
    """

    learning_rate: float
    batch_size: int = 32
    epochs: float = 3.0
    max_seq_length: int = 128
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    clip_norm: float | None = 1.0
    dropout: float | None = None
    max_steps: int | None = None
    seed: int = 0
    eval_batch_size: int = 64
    log_every: int | None = None
    arc_mlp_size: int = 500
    rel_mlp_size: int = 100
    head_lr_multiplier: float = 1.0
    freeze_layers: int = 0

    def __post_init__(self) -> None:
        _positive("learning_rate", self.learning_rate)
        _positive("batch_size", self.batch_size)
        _positive("epochs", self.epochs)
        _positive("max_query_length", self.max_query_length)
        _positive("max_answer_length", self.max_answer_length)
        _positive("eval_batch_size", self.eval_batch_size)
        _positive("arc_mlp_size", self.arc_mlp_size)
        _positive("rel_mlp_size", self.rel_mlp_size)
        _positive("head_lr_multiplier", self.head_lr_multiplier)
        if self.max_seq_length < 8:
            raise ConfigError(f"max_seq_length={self.max_seq_length} is too short (at least 8)")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"warmup_fraction={self.warmup_fraction} must be in [0, 1)")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay} must be >= 0")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        for name in ("max_steps", "log_every", "clip_norm"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        _positive("doc_stride", self.doc_stride)
        if isinstance(self.freeze_layers, bool) or not isinstance(self.freeze_layers, int):
            raise ConfigError(f"freeze_layers={self.freeze_layers!r} must be an int")
        if self.freeze_layers < 0:
            raise ConfigError(f"freeze_layers={self.freeze_layers} must be >= 0")

    def replace(self, **changes) -> FinetuneConfig:
        """A copy with some fields changed (``None`` values are ignored)."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"unknown fine-tuning settings {unknown}; valid: {sorted(fields)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _positive(name: str, value) -> None:
    if value <= 0:
        raise ConfigError(f"{name}={value} must be positive")


_PAPER = {
    "mnli": dict(learning_rate=2e-5, batch_size=32, epochs=3.0, max_seq_length=128),
    "squad": dict(learning_rate=3e-5, batch_size=32, epochs=2.0, max_seq_length=384),
    "agnews": dict(learning_rate=2e-5, batch_size=32, epochs=3.0, max_seq_length=128),
    "parse": dict(
        learning_rate=5e-5,
        batch_size=32,
        epochs=3.0,
        max_seq_length=128,
        dropout=0.33,
        arc_mlp_size=500,
        rel_mlp_size=100,
        head_lr_multiplier=20.0,
    ),
}


def paper_defaults(task: TaskName, **overrides) -> FinetuneConfig:
    """The standard BERT fine-tuning settings for ``task`` (table in the module docstring).

    Args:
        task: ``"mnli"``, ``"squad"``, ``"agnews"`` or ``"parse"``.
        **overrides: fields to change; ``None`` values keep the default.
    """
    check_choice("task", task, TASKS)
    return FinetuneConfig(**_PAPER[task]).replace(**overrides)
