"""Run the reproduction step by step; a finished step is never redone.

Steps (each prints its progress): ``finetune:<name>`` for every fine-tuning job,
``compare:<texts>`` for every text source, ``probes`` (the structural-probe sweep over every
layer of every model, resumable probe by probe), ``edge`` (edge probes on the same sentences and
feature cache), ``restore:<name>`` for every fine-tuned model and ``freeze:<name>`` for the
jobs the config names (layer ablations), and ``report``. ``<out>/state.json`` records
each finished step with a hash of its settings and of the fingerprints of what it read (data
files by content, model folders by their files' names, sizes and times: see
:mod:`.inputs`); a second run skips the steps whose settings and inputs are unchanged and whose
outputs exist, so it costs a small fraction of the first, and a run interrupted anywhere
continues from the last finished step (the sweep and the feature cache also keep their own
finished parts). A step whose input changed runs again and says which input; the steps that
read its outputs (the fine-tuned models) then see a changed input too and follow.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from ..journal import Journal, input_fingerprints
from ..outputs import results_path
from ..settings import ExtractionSettings
from .config import FinetuneJob, ReproduceConfig, TextSource
from .inputs import model_folder, text_source_file

Say = Callable[[str], None]


class StepState(Journal):
    """``state.json``: which steps are done, with what settings and inputs, and how long they
    took (a :class:`~bert_repro.journal.Journal` whose entries are the steps)."""

    def __init__(self, out: Path):
        super().__init__(Path(out) / "state.json", field="steps")

    @property
    def steps(self) -> dict[str, dict]:
        return self.entries


def _step(
    state: StepState,
    name: str,
    settings: dict,
    outputs: list[Path],
    run,
    say: Say,
    inputs: dict | None = None,
):
    """Run step ``name`` unless its earlier result stands. ``inputs`` are fingerprinted before
    it runs, so an input edited while it runs is found changed next time."""
    reason = state.why_redo(name, settings, outputs, inputs)
    if reason is None:
        say(f"[{name}] done in an earlier run ({state.steps[name]['seconds']:.0f}s then): reused")
        return
    say(f"[{name}] running" if name not in state.steps else f"[{name}] {reason}: running again")
    t = time.monotonic()
    run()
    seconds = time.monotonic() - t
    state.record(name, settings, seconds, inputs)
    say(f"[{name}] finished in {seconds:.0f}s")


def model_dir(out: Path, job: FinetuneJob) -> Path:
    return out / "models" / job.name


def _job_data(config: ReproduceConfig, job: FinetuneJob):
    """``(TaskData, FinetuneConfig)`` of a fine-tuning job, as its run and its ablations use."""
    from ..finetune import load_task_data, paper_defaults

    data = load_task_data(
        job.task,
        job.data,
        eval_data=job.eval_data,
        test_data=job.test_data,
        seed=config.seed,
        train_limit=job.train_limit,
        eval_limit=job.eval_limit,
    )
    hp = paper_defaults(
        job.task,
        max_steps=job.max_steps,
        max_seq_length=job.max_seq_length,
        batch_size=job.batch_size,
        learning_rate=job.learning_rate,
        seed=config.seed,
    )
    return data, hp


def _finetune(config: ReproduceConfig, job: FinetuneJob, out: Path, say: Say, strategy) -> None:
    from ..finetune import finetune

    data, hp = _job_data(config, job)
    result = finetune(
        job.task,
        config.base,
        data=data,
        config=hp,
        out_dir=model_dir(out, job),
        overwrite=True,
        strategy=strategy,
    )
    shown = ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items() if isinstance(v, float))
    say(f"  {job.name}: {result.steps} steps in {result.train_seconds:.0f}s; {shown}")


def _compare(
    config: ReproduceConfig,
    source: TextSource,
    out: Path,
    extraction: ExtractionSettings,
    say: Say,
) -> None:
    from ..plot import BertComparator
    from ..text import load_texts

    texts = list(load_texts(source.spec, source.limit))
    finetuned = {job.name: model_dir(out, job) for job in config.finetune}
    comparator = BertComparator.load(config.base, finetuned, settings=extraction)
    result = comparator.compare(
        texts, source.limit, sample_tokens=config.sample_tokens, seed=config.seed, too_long="skip"
    )
    result.save(out / "compare" / source.name, texts=source.spec, models=comparator.model_entries())
    for name in result.names:
        cos = result.metric("cosine", name)
        say(f"  {name} vs base on {source.name}: cosine layer 0 {cos[0]:.3f} ... top {cos[-1]:.3f}")


def _probe_step(
    config: ReproduceConfig, out: Path, extraction, say: Say, folder: str, **settings
) -> None:
    """Run the probe (``folder="probes"``: :func:`~bert_repro.probe.sweep.run_sweep`) or edge
    (``"edge"``: :func:`~bert_repro.probe.edge.run_edge_probes`) step on every model and the
    config's CoNLL-U files, into ``out/<folder>``, with the settings the two share and the
    step's own ``settings``."""
    if folder == "probes":
        from ..probe.sweep import run_sweep as run
    else:
        from ..probe.edge import run_edge_probes as run
    run(
        _model_specs(config, out),
        config.probe_train,
        config.probe_dev,
        config.probe_test,
        out / folder,
        extraction=extraction,
        cache_dir=out / "cache",
        log=say,
        layers=config.probe_layers,
        seed=config.seed,
        too_long="skip",
        **settings,
    )


def _probes(config: ReproduceConfig, out: Path, extraction: ExtractionSettings, say: Say) -> None:
    rank, epochs, limit = config.probe_rank, config.probe_epochs, config.probe_limit
    _probe_step(config, out, extraction, say, "probes", rank=rank, epochs=epochs, limit=limit)


def _model_specs(config: ReproduceConfig, out: Path) -> list[str]:
    """``label=source`` of the base and every fine-tuned model (probe and edge steps)."""
    models = [f"{config.base_label}={config.base or 'default'}"]
    return models + [f"{job.name}={model_dir(out, job)}" for job in config.finetune]


def _edge(config: ReproduceConfig, out: Path, extraction: ExtractionSettings, say: Say) -> None:
    limit = config.edge_limit or config.probe_limit
    edge = {"tasks": config.edge_tasks, "epochs": config.edge_epochs, "mixes": config.edge_mixes}
    _probe_step(config, out, extraction, say, "edge", limit=limit, **edge)


def _restore(config: ReproduceConfig, job: FinetuneJob, out: Path, say: Say, strategy) -> None:
    from ..ablate import restore_layers

    result = restore_layers(
        model_dir(out, job),
        config.base,
        ks=config.restore_ks,
        name=job.name,
        log=say,
        strategy=strategy,
    )
    result.save(out / "ablate" / "restore" / job.name, models=result.model_entries())


def _freeze(config: ReproduceConfig, job: FinetuneJob, out: Path, say: Say, strategy) -> None:
    from ..ablate import freeze_sweep

    data, hp = _job_data(config, job)
    ks = sorted(set(config.freeze_ks) - {0})  # k = 0 is the job's own run (its level)
    result = freeze_sweep(
        job.task, config.base, data=data, ks=ks, config=hp, name=job.name, strategy=strategy
    )
    result.save(out / "ablate" / "freeze" / job.name, models=result.model_entries())


def _ablation_steps(
    config, out: Path, state: StepState, say: Say, models_key, base, strategy
) -> None:
    """``restore:<job>`` for every fine-tuned model, ``freeze:<job>`` for ``config.freeze``,
    under ``strategy``."""
    for job in config.finetune:
        _step(
            state,
            f"restore:{job.name}",
            {**models_key, "job": job, "ks": config.restore_ks},
            [results_path(out / "ablate" / "restore" / job.name)],
            lambda job=job: _restore(config, job, out, say, strategy),
            say,
            inputs=input_fingerprints(folders=[base, model_dir(out, job)]),
        )
    for job in (j for j in config.finetune if j.name in config.freeze):
        _step(
            state,
            f"freeze:{job.name}",
            {"base": config.base, "seed": config.seed, "job": job, "ks": config.freeze_ks},
            [results_path(out / "ablate" / "freeze" / job.name)],
            lambda job=job: _freeze(config, job, out, say, strategy),
            say,
            inputs=input_fingerprints(files=[job.data, job.eval_data], folders=[base]),
        )


def run_reproduction(
    config: ReproduceConfig,
    out: str | os.PathLike = "runs/reproduce",
    *,
    say: Say = print,
    strategy=None,
) -> Path:
    """Run (or continue) the whole experiment into ``out`` and return the report's path.

    ``strategy``: a one-process ``tf.distribute.Strategy`` (mirrored, TPU) that every step
    (fine-tuning, comparison, probes, ablations) runs under; a multi-worker one is refused (the
    steps' own commands take ``--distribute multi-worker``: docs/distributed.md).
    """
    from ..distribute import is_multi_worker
    from .report import write_report

    if is_multi_worker(strategy):
        raise ConfigError(
            "reproduce runs on one machine (--distribute none, mirrored or tpu); on a cluster "
            "run its steps' commands (finetune, compare, probe) with --distribute multi-worker"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = StepState(out)
    started = time.monotonic()
    extraction = ExtractionSettings(
        max_batch=config.batch_size,
        jit_compile=config.jit_compile,
        precision=config.precision,
        strategy=strategy,
    )
    settings = config.to_dict()
    base = model_folder(config.base)
    for job in config.finetune:
        _step(
            state,
            f"finetune:{job.name}",
            {"base": config.base, "seed": config.seed, "job": job},
            [model_dir(out, job) / "finetune.json"],
            lambda job=job: _finetune(config, job, out, say, strategy),
            say,
            inputs=input_fingerprints(
                files=[job.data, job.eval_data, job.test_data], folders=[base]
            ),
        )
    models = [base, *(model_dir(out, job) for job in config.finetune)]
    # Later steps depend on the fine-tuned models: a re-trained model re-runs them.
    models_key = {
        "base": config.base,
        "finetune": [state.steps.get(f"finetune:{j.name}") for j in config.finetune],
    }
    for source in config.texts:
        _step(
            state,
            f"compare:{source.name}",
            {
                **models_key,
                "source": source,
                "sample_tokens": config.sample_tokens,
                "seed": config.seed,
                **({} if config.precision == "float32" else {"precision": config.precision}),
            },
            [results_path(out / "compare" / source.name)],
            lambda source=source: _compare(config, source, out, extraction, say),
            say,
            inputs=input_fingerprints(files=[text_source_file(source.spec)], folders=models),
        )
    probe_settings = {k: settings[k] for k in settings if k.startswith("probe_")}
    if config.precision != "float32":  # other numbers; float32 keeps the earlier runs' keys
        probe_settings["precision"] = config.precision
    _step(
        state,
        "probes",
        {**models_key, **probe_settings, "seed": config.seed},
        [results_path(out / "probes")],
        lambda: _probes(config, out, extraction, say),
        say,
        inputs=input_fingerprints(
            files=[config.probe_train, config.probe_dev, config.probe_test], folders=models
        ),
    )
    _ablation_steps(config, out, state, say, models_key, base, strategy)
    edge_settings = {k: settings[k] for k in settings if k.startswith("edge_")}
    _step(
        state,
        "edge",
        {**models_key, **probe_settings, **edge_settings, "seed": config.seed},
        [results_path(out / "edge")],
        lambda: _edge(config, out, extraction, say),
        say,
        inputs=input_fingerprints(
            files=[config.probe_train, config.probe_dev, config.probe_test], folders=models
        ),
    )
    report = write_report(config, out, state, time.monotonic() - started)
    say(f"report: {report}")
    return report
