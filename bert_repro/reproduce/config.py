"""Settings of a reproduction run and the two presets: ``offline`` (this machine) and ``paper``.

``offline`` uses the shipped all-MiniLM-L6-v2 and the real data of the shared data folder
(:func:`bert_repro.data.shared_data_dir`: ``--data-dir``, ``$BERT_REPRO_DATA`` or
``../shared/data``) with
sizes chosen to finish in about 15 minutes on 2 CPU cores. ``paper`` is Merchant et al.'s
setup: bert-base-uncased fine-tuned on MNLI and SQuAD v1.1 (tensorflow-datasets), compared over
5,000 wiki40b paragraphs, probed on all of UD English-EWT with rank-128 probes for up to 40
epochs: a GPU job (see the README for its cost).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from ..data import shared_data_dir
from ..errors import ConfigError, check_choice, check_positive
from ..models import PRECISIONS

PRESETS = ("offline", "paper")
#: Steps of the offline parser fine-tune (batches of 16 EWT sentences, 1e-4): enough for a
#: parser that is clearly better than a baseline in a few CPU minutes.
PARSE_STEPS = 100
#: Offline sizes that set the run time (see the README's demo section for what they cost):
#: texts per comparison source, sentences per EWT split probed, edge-probe epochs.
OFFLINE_TEXTS = 200
OFFLINE_PROBE_SENTENCES = 400
OFFLINE_EDGE_EPOCHS = 2


@dataclass(frozen=True)
class FinetuneJob:
    """One fine-tuning run: ``task`` on ``data`` (a local file, or ``None`` for tfds), evaluated
    on ``eval_data`` (default: a seeded hold-out of ``data``) and ``test_data`` (optional); at
    most ``train_limit`` / ``eval_limit`` examples (a seeded subset, see
    :func:`bert_repro.finetune.load_task_data`)."""

    name: str
    task: str
    data: str | None = None
    eval_data: str | None = None
    test_data: str | None = None
    max_steps: int | None = None
    train_limit: int | None = None
    eval_limit: int | None = None
    max_seq_length: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None


@dataclass(frozen=True)
class TextSource:
    """Texts to compare the models on: the first ``limit`` texts of a
    :func:`bert_repro.text.load_texts` spec."""

    name: str
    spec: str
    limit: int
    in_domain_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReproduceConfig:
    """Everything a reproduction run depends on (echoed into ``results.json``).

    Besides the fine-tuning jobs, the text sources and the structural probes (``probe_*``):
    edge probes for ``edge_tasks`` on the first ``edge_limit`` sentences of the probe files
    (``None``: ``probe_limit``), at most ``edge_epochs`` epochs, with the scalar mixes
    ``edge_mixes`` (``"cumulative"``: Tenney's mixes of layers 0..l; ``"full"``: only the mix of
    all layers), ``restore`` ablations of every fine-tuned model at ``restore_ks``
    (``None``: every k from 0 to the number of layers; both directions), and ``freeze``
    ablations of the jobs named in ``freeze`` at ``freeze_ks`` (k = 0 is the job's own run).
    """

    preset: str
    base: str | None
    base_label: str
    finetune: tuple[FinetuneJob, ...]
    texts: tuple[TextSource, ...]
    probe_train: str
    probe_dev: str
    probe_test: str
    probe_limit: int | None = None
    probe_rank: int = 128
    probe_epochs: int = 40
    probe_layers: tuple[int, ...] | None = None
    edge_tasks: tuple[str, ...] = ("pos", "deprel")
    edge_epochs: int = 10
    edge_limit: int | None = None
    edge_mixes: str = "cumulative"
    restore_ks: tuple[int, ...] | None = None
    freeze: tuple[str, ...] = ()
    freeze_ks: tuple[int, ...] = (2, 4)
    sample_tokens: int = 2000
    batch_size: int | None = None
    precision: str = "float32"
    jit_compile: bool = False
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset(name: str = "offline", *, data_dir: str | os.PathLike | None = None) -> ReproduceConfig:
    """The settings of a named preset.

    Args:
        name: ``"offline"`` (shipped MiniLM, the shared data, ~15 min on 2 CPU cores) or
            ``"paper"`` (bert-base-uncased, MNLI / SQuAD / wiki40b from tensorflow-datasets,
            full EWT; a GPU job).
        data_dir: the shared data folder (EWT is needed by both presets); default
            :func:`bert_repro.data.shared_data_dir`'s search.

    Raises:
        DataError: no shared data folder (the message says where it looked).
    """
    check_choice("preset", name, PRESETS)
    data = shared_data_dir(data_dir)
    ewt = data / "ud-english-ewt"
    train, dev, test = (str(ewt / f"en_ewt-ud-{s}.conllu") for s in ("train", "dev", "test"))
    if name == "offline":
        agnews = str(data / "ag-news" / "test.csv")
        squad = str(data / "squad-sample" / "dev-v1.1-sample.json")
        return ReproduceConfig(
            preset=name,
            base=None,
            base_label="MiniLM",
            finetune=(
                FinetuneJob(
                    "agnews",
                    "agnews",
                    agnews,
                    max_steps=64,
                    max_seq_length=64,
                    batch_size=16,
                    eval_limit=400,
                ),
                FinetuneJob(
                    "squad",
                    "squad",
                    squad,
                    max_steps=40,
                    # windows of 128 wordpieces (a step of 8 costs 2/3 of one at 192)
                    max_seq_length=128,
                    batch_size=8,
                    # 3e-5 barely moves the model in 60 steps on 648 questions (EM 4 / F1 11
                    # after 42 steps); 1e-4 gives a model that changed, as fine-tuning does.
                    learning_rate=1e-4,
                ),
                FinetuneJob(
                    "parse",
                    "parse",
                    train,
                    eval_data=dev,
                    test_data=test,
                    max_steps=PARSE_STEPS,
                    train_limit=PARSE_STEPS * 16,
                    eval_limit=300,
                    batch_size=16,
                    learning_rate=1e-4,
                ),
            ),
            # 200 texts: CKA compares sample_tokens (2,000) of them; the cosines average all
            texts=(
                TextSource("ewt", f"conllu:{test}", OFFLINE_TEXTS, ("parse",)),
                TextSource("agnews", f"csv:{agnews}:description", OFFLINE_TEXTS, ("agnews",)),
            ),
            probe_train=train,
            probe_dev=dev,
            probe_test=test,
            # the first 400 sentences of each split, for both the structural and the edge
            # probes: one feature extraction per model and split serves both steps
            probe_limit=OFFLINE_PROBE_SENTENCES,
            probe_rank=64,
            probe_epochs=5,
            edge_epochs=OFFLINE_EDGE_EPOCHS,
            edge_mixes="full",
            restore_ks=(0, 3, 6),
            freeze=("agnews", "parse"),
            freeze_ks=(3,),
        )
    return ReproduceConfig(
        preset=name,
        base="bert-base-uncased",
        base_label="bert-base",
        finetune=(
            FinetuneJob("mnli", "mnli"),
            FinetuneJob("squad", "squad"),
            FinetuneJob("parse", "parse", train, eval_data=dev, test_data=test),
        ),
        texts=(
            TextSource("wiki40b", "wiki40b:train", 5000),
            TextSource("ewt", f"conllu:{test}", 2077, ("parse",)),
        ),
        probe_train=train,
        probe_dev=dev,
        probe_test=test,
        freeze=("mnli", "parse"),
        freeze_ks=(4, 8),
    )


def override(config: ReproduceConfig, **changes) -> ReproduceConfig:
    """A copy with some settings changed (``None`` keeps the preset's value).

    Raises:
        ConfigError: an unknown setting, or a count that is not a positive int (checked here,
            so a bad ``--probe-epochs`` fails before the fine-tuning runs, not after).
    """
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; valid: {sorted(fields)}")
    new = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    for name in ("probe_rank", "probe_epochs", "edge_epochs"):
        check_positive(name, getattr(new, name))
    check_positive("batch_size", new.batch_size, optional=True)
    check_choice("precision", new.precision, PRECISIONS)
    check_positive("probe_limit", new.probe_limit, optional=True)
    check_positive("sample_tokens", new.sample_tokens, minimum=0)
    return new
