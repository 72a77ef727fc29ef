"""``--distribute``: the pure helpers of :mod:`bert_repro.distribute` and the option on every
command that runs a model (no TensorFlow strategy is built here; see test_multiworker.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bert_repro.cli import build_parser
from bert_repro.distribute import (
    DISTRIBUTE,
    chief_role,
    from_chief,
    is_chief,
    make_strategy,
    mirrored_plan,
    output_dir_for,
    replica_rows,
    worker_role,
)
from bert_repro.errors import ConfigError


@pytest.mark.parametrize("batch", [0, 1, 2, 5, 7, 16, 33])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 8])
def test_replica_rows_partition_the_batch_in_order(batch, replicas):
    spans = [replica_rows(batch, g, replicas) for g in range(replicas)]
    rows = [i for start, stop in spans for i in range(start, stop)]
    assert rows == list(range(batch))  # every row once, in order: gathering restores the batch
    sizes = [stop - start for start, stop in spans]
    assert max(sizes) - min(sizes) <= 1
    # the same split as NumPy's array_split, in its "larger pieces last" variant
    assert sorted(sizes) == sorted(len(a) for a in np.array_split(np.arange(batch), replicas))


def test_replica_rows_hand_worked():
    assert [replica_rows(5, g, 2) for g in range(2)] == [(0, 2), (2, 5)]
    assert [replica_rows(1, g, 2) for g in range(2)] == [(0, 0), (0, 1)]  # one replica idles
    with pytest.raises(ConfigError, match="replica 2"):
        replica_rows(4, 2, 2)


def test_mirrored_plan():
    assert mirrored_plan(None, 0) == ("CPU", 1)
    assert mirrored_plan(2, 0) == ("CPU", 2)
    assert mirrored_plan(None, 4) == ("GPU", 4)
    assert mirrored_plan(2, 4) == ("GPU", 2)
    with pytest.raises(ConfigError, match="only 4 GPUs"):
        mirrored_plan(5, 4)
    with pytest.raises(ConfigError, match="--devices must be"):
        mirrored_plan(0, 0)


def _tf_config(kind, index, workers=2, chief=False):
    cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_worker_role_and_chief():
    assert worker_role(_tf_config("worker", 1)) == ("worker", 1, 2)
    assert worker_role(_tf_config("chief", 0, chief=True)) == ("chief", 0, 3)
    assert chief_role("worker", 0, has_chief=False)
    assert not chief_role("worker", 1, has_chief=False)
    assert not chief_role("worker", 0, has_chief=True)  # the chief task is the chief
    assert chief_role("chief", 0, has_chief=True)
    assert chief_role(None, None, has_chief=False)  # one process


@pytest.mark.parametrize(
    "text, match",
    [
        (None, "reads the cluster from TF_CONFIG"),
        ("not json", "not a valid cluster"),
        ('{"cluster": {"worker": ["a:1"]}}', "not a valid cluster"),
        (_tf_config("worker", 2), "not a valid cluster"),  # index beyond the cluster
    ],
)
def test_worker_role_errors_say_how_to_set_tf_config(text, match):
    with pytest.raises(ConfigError, match=match) as err:
        worker_role(text)
    assert '"task": {"type": "worker", "index": 0}' in str(err.value)


def test_make_strategy_checks_its_choices(monkeypatch):
    assert make_strategy("none") is None
    with pytest.raises(ConfigError, match="choose one of 'none', 'mirrored'"):
        make_strategy("horovod")
    with pytest.raises(ConfigError, match="--devices is for --distribute mirrored"):
        make_strategy("none", devices=2)
    with pytest.raises(ConfigError, match="--tpu is for --distribute tpu"):
        make_strategy("mirrored", tpu="grpc://1.2.3.4:8470")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        make_strategy("multi-worker")


def test_one_process_is_the_chief(tmp_path):
    assert is_chief(None)
    assert output_dir_for(tmp_path / "out", None) == tmp_path / "out"
    assert from_chief(None, True) is True
    arr = np.arange(3)
    assert from_chief(None, arr) is arr


MODEL_COMMANDS = [
    ["compare", "--finetuned", "x", "--texts", "t.txt", "--out", "o"],
    ["probe", "train"],
    ["probe", "evaluate"],
    ["probe", "sweep"],
    ["probe", "edge"],
    ["finetune", "agnews", "--out", "o"],
    ["ablate", "freeze", "agnews"],
    ["ablate", "restore", "m"],
    ["reproduce"],
]


@pytest.mark.parametrize("argv", MODEL_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_model_command_takes_distribute(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    assert (args.distribute, args.devices, args.tpu) == ("none", None, None)
    args = parser.parse_args([*argv, "--distribute", "mirrored", "--devices", "2"])
    assert (args.distribute, args.devices) == ("mirrored", 2)
    args = parser.parse_args([*argv, "--distribute", "tpu", "--tpu", "my-tpu"])
    assert (args.distribute, args.tpu) == ("tpu", "my-tpu")
    assert set(DISTRIBUTE) == {"none", "mirrored", "multi-worker", "tpu"}


def test_finetune_strategy_is_a_hidden_alias(capsys):
    parser = build_parser()
    args = parser.parse_args(["finetune", "agnews", "--out", "o", "--strategy", "mirrored"])
    assert args.distribute == "mirrored"
    with pytest.raises(SystemExit):
        parser.parse_args(["finetune", "--help"])
    shown = capsys.readouterr().out
    assert "--distribute" in shown and "--strategy" not in shown


def test_bad_distribute_choice_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["probe", "train", "--distribute", "horovod"])
    assert "multi-worker" in capsys.readouterr().err
