"""``--distribute multi-worker`` and ``mirrored`` from the command line, against one process.

Two worker processes on 127.0.0.1 (free ports, a ``TF_CONFIG`` each) run the same commands
(``compare``, ``probe train``, ``finetune``, ``ablate restore``) through :func:`bert_repro.cli.main`, one after the
other in the same process (a process can hold only one MultiWorkerMirroredStrategy); a third
process runs them with ``--distribute mirrored --devices 2`` (two logical CPUs), then with
``--distribute none``. Tiny random BERTs (dropout 0, so the replicas' losses are
deterministic), EWT dev sentences, AG News rows. The processes are bounded by a timeout and killed on failure; no
child process is left behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_bert

TIMEOUT = 420  # seconds for all processes together (a loaded 2-core machine)

JOB = textwrap.dedent(
    """
    import json, os, sys
    from bert_repro.cli import main
    from bert_repro import distribute
    for argv in json.loads(sys.argv[1]):
        if argv == "RESTART":  # as a restarted worker: new temporary folders
            distribute._WORKER_DIRS.clear()
            continue
        code = main(argv)
        assert code == 0, (argv, code)
    tmp = os.environ["TMPDIR"]
    print("TMP-CONTENTS", json.dumps(sorted(os.listdir(tmp))), flush=True)
    """
)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _children() -> list[int]:
    """PIDs of this process's live children (psutil when installed, else /proc)."""
    try:
        import psutil

        return [c.pid for c in psutil.Process().children(recursive=True) if c.is_running()]
    except ImportError:
        me, found = str(os.getpid()), []
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == me and fields[0] != "Z":
                found.append(int(entry.name))
        return found


def _tiny_no_dropout(folder: Path, seed: int) -> Path:
    build_tiny_bert(folder, seed=seed, max_positions=512)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _commands(root: Path, distribute: list[str], models: dict, ewt: Path, agnews: Path):
    compare = ["compare", "--base", str(models["base"]), "--finetuned", f"ft={models['ft']}"]
    compare += ["--texts", f"conllu:{ewt}", "--limit", "40", "--sample-tokens", "300"]
    compare += ["--max-batch", "7", "--too-long", "skip", "--no-png", "--quiet"]
    compare += ["--out", str(root / "compare")]
    probe = ["probe", "train", "--model", f"tiny={models['base']}", "--train", str(ewt)]
    probe += ["--dev", str(ewt), "--limit", "40", "--layers", "1", "--rank", "8"]
    probe += ["--epochs", "3", "--batch-size", "10", "--too-long", "skip"]
    probe += ["--cache-dir", str(root / "cache"), "--out", str(root / "probe")]  # it says
    # on how many replicas the probes train
    finetune = ["finetune", "agnews", "--model", str(models["ft"]), "--data", str(agnews)]
    finetune += ["--limit", "48", "--eval-limit", "8", "--batch-size", "8"]
    finetune += ["--max-steps", "4", "--max-seq-length", "24", "--log-every", "1"]
    finetune += ["--learning-rate", "1e-3", "--seed", "0", "--quiet", "--out", str(root / "ft")]
    restore = ["ablate", "restore", str(root / "ft"), "--base", str(models["base"])]
    restore += ["--ks", "0", "1", "--quiet", "--no-figures", "--out", str(root / "restore")]
    return {
        "compare": compare + distribute,
        "probe": [*probe, *distribute],
        "finetune": finetune + distribute,
        "restore": restore + distribute,
    }


@pytest.fixture
def runs(tmp_path_factory, shared_data):
    """Run everything once: ``{"ref", "mirrored", "mw"}`` folders and the processes' output."""
    tmp = tmp_path_factory.mktemp("multiworker")
    models = {"base": _tiny_no_dropout(tmp / "base", 0), "ft": _tiny_no_dropout(tmp / "ft", 1)}
    ewt = shared_data / "ud-english-ewt" / "en_ewt-ud-dev.conllu"
    agnews = tmp / "agnews.csv"
    lines = (shared_data / "ag-news" / "test.csv").read_text().splitlines()[:81]
    agnews.write_text("\n".join(lines) + "\n")

    def cmds(name, distribute, keep=("compare", "probe", "finetune", "restore")):
        c = _commands(tmp / name, distribute, models, ewt, agnews)
        return [c[k] for k in keep]

    mirrored = cmds(
        "mirrored",
        ["--distribute", "mirrored", "--devices", "2"],
        ("compare", "probe", "finetune", "restore"),
    )
    ref = cmds("ref", ["--distribute", "none"])
    workers = cmds("mw", ["--distribute", "multi-worker"])
    # resuming after the other worker restarted: the chief's cache has every feature (its
    # results for a new --out do not), the restarted worker's cache is empty: both skip
    # extraction and the chief trains alone; with the same --out the chief's results are
    # complete: both skip everything.
    probe = workers[1]
    workers[2:2] = [  # before the restore, which reads the fine-tuned model
        "RESTART",
        probe[: probe.index("--out") + 1]
        + [str(tmp / "mw" / "probe2"), *probe[probe.index("--out") + 2 :]],
        probe,
    ]

    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    base_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    procs, logs = [], []
    try:
        for i in range(2):
            worker_tmp = tmp / f"tmp-worker{i}"
            worker_tmp.mkdir()
            env = dict(
                base_env,
                TMPDIR=str(worker_tmp),
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            )
            logs.append(tmp / f"worker{i}.log")
            procs.append(_start([sys.executable, "-c", JOB, json.dumps(workers)], env, logs[-1]))
        # one process for both single-process runs (one TensorFlow start-up less): mirrored
        # first, since --devices 2 splits the CPU before TensorFlow starts; --distribute none
        # then runs on the first of the two logical CPUs, as a plain process would
        single_tmp = tmp / "tmp-single"
        single_tmp.mkdir()
        logs.append(tmp / "single.log")
        env = {**base_env, "TMPDIR": str(single_tmp)}
        procs.append(_start([sys.executable, "-c", JOB, json.dumps(mirrored + ref)], env, logs[-1]))
        deadline = time.monotonic() + TIMEOUT
        for proc, log in zip(procs, logs, strict=True):
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"timed out after {TIMEOUT}s; {log.name}:\n{_tail(log)}")
            assert proc.returncode == 0, f"{log.name}:\n{_tail(log)}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    out = [log.read_text() for log in logs]
    yield {"root": tmp, "out": out, "workers_tmp": [tmp / "tmp-worker0", tmp / "tmp-worker1"]}
    assert _children() == []


def _start(argv, env, log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT)


def _tail(log: Path) -> str:
    return log.read_text()[-4000:]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _similarities(folder: Path) -> dict:
    """The numbers of a compare run (its rows and summary; not ``meta``, which has the time)."""
    data = json.loads((folder / "compare" / "results.json").read_text())
    return {"rows": data["rows"], "summary": data.get("summary")}


def _numbers(tree, prefix="") -> dict[str, float]:
    """Every number of a JSON tree, by its path."""
    found = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            found.update(_numbers(v, f"{prefix}/{k}"))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            found.update(_numbers(v, f"{prefix}/{i}"))
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        found[prefix] = float(tree)
    return found


def _check_compare_multiworker_and_mirrored_equal_one_process(runs):
    root = runs["root"]
    ref = _numbers(_similarities(root / "ref"))
    assert len(ref) >= 15  # cosine, RSA, CKA for 3 hidden states; counts
    for name in ("mw", "mirrored"):
        got = _numbers(_similarities(root / name))
        assert got.keys() == ref.keys()
        for key, value in ref.items():
            assert abs(got[key] - value) <= 1e-5, (name, key, got[key], value)


def _probe_rows(folder: Path) -> list[dict]:
    rows = json.loads((folder / "results.json").read_text())["rows"]
    return sorted(rows, key=lambda r: (r["kind"], r["layer"]))


def _check_probe_train_multiworker_matches_one_process(runs):
    """Both workers train the probes, each on its rows of every batch (the chief says so);
    their features equal one process's to ~1e-6 (float reduction order in the smaller
    per-replica extraction batches), and so do the probes' metrics up to that noise carried
    through 3 epochs of Adam: 1e-3 absolute. The same for two mirrored CPUs. The rerun into
    a new folder (the chief's cache whole, the other worker's new one empty) trains on the
    chief alone, to the same tolerance."""
    root = runs["root"]
    chief_log, single_log = runs["out"][0], runs["out"][2]
    assert chief_log.count("the probes train on 2 replicas") == 1  # the first run only
    assert single_log.count("the probes train on 2 replicas") == 1  # mirrored, not none
    ref = _probe_rows(root / "ref" / "probe")
    assert len(ref) == 2  # distance and depth, layer 1
    for folder in (root / "mw" / "probe", root / "mw" / "probe2", root / "mirrored" / "probe"):
        got = _probe_rows(folder)
        assert len(got) == 2
        for a, b in zip(ref, got, strict=True):
            assert (a["kind"], a["layer"]) == (b["kind"], b["layer"])
            for metric in ("dev_uuas", "dev_dspr", "dev_root_acc", "dev_nspr", "dev_loss"):
                if a[metric] is not None:
                    assert abs(a[metric] - b[metric]) <= 1e-3, (
                        folder,
                        metric,
                        a[metric],
                        b[metric],
                    )


def _check_finetune_loss_of_two_workers_matches_one_process(runs):
    """Global batch 8: 4 rows per worker; the per-step training losses match one process's
    with batch 8 (and two mirrored logical CPUs') within float tolerance."""
    root = runs["root"]

    def losses(name):
        record = json.loads((root / name / "ft" / "finetune.json").read_text())
        return np.array(record["history"]["loss"])

    ref = losses("ref")
    assert len(ref) == 4 and np.all(np.isfinite(ref))
    assert not np.allclose(ref, ref[0])  # training moves the loss: the check has teeth
    np.testing.assert_allclose(losses("mw"), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses("mirrored"), ref, rtol=1e-4, atol=1e-5)


def _check_restore_multiworker_and_mirrored_equal_one_process(runs):
    """``ablate restore`` of the fine-tuned model at k = 0, 1 (both directions): the same
    accuracies (from 8 evaluation examples: a logit within float rounding of a tie would flip
    one by 1/8; the tiny model's logits are far from ties) and levels as one process."""
    root = runs["root"]

    def scores(name):
        rows = json.loads((root / name / "restore" / "results.json").read_text())["rows"]
        return {(r["direction"], r["k"], r["metric"]): r["value"] for r in rows}

    ref = scores("ref")
    assert len(ref) >= 4 and ("bottom", 1, "accuracy") in ref
    for name in ("mw", "mirrored"):
        got = scores(name)
        assert got.keys() == ref.keys()
        for key, value in ref.items():
            assert abs(got[key] - value) <= 1e-6, (name, key, got[key], value)


def _check_only_the_chief_writes(runs):
    root = runs["root"]
    # the chief's folders hold what one process writes, file for file
    assert _files(root / "mw" / "compare") == _files(root / "ref" / "compare")
    assert _files(root / "mw" / "probe") == _files(root / "ref" / "probe")
    assert _files(root / "mw" / "probe2") == _files(root / "ref" / "probe")
    assert _files(root / "mw" / "ft") == _files(root / "ref" / "ft")
    assert _files(root / "mw" / "restore") == _files(root / "ref" / "restore")
    assert not list((root / "mw").glob(".*"))  # no temporary or partial folders left
    # worker 1 wrote into its own temporary folders (listed before it exited) ...
    listed = [
        json.loads(line.split(" ", 1)[1])
        for text in runs["out"][:2]
        for line in text.splitlines()
        if line.startswith("TMP-CONTENTS")
    ]
    assert len(listed) == 2
    chief, other = listed
    assert runs["out"][1].count("TMP-CONTENTS") == 1 and "results:" not in runs["out"][1]
    assert not any(name.startswith("bert-repro-worker") for name in chief)
    assert {"out", "cache"} <= {name.split("-")[3] for name in other if name.count("-") >= 4}
    # ... which were deleted when it exited
    for folder in runs["workers_tmp"]:
        assert not any(p.name.startswith("bert-repro-worker") for p in folder.iterdir())


@pytest.mark.slow
def test_multiworker_and_mirrored_commands_match_one_process(runs):
    """One test (one launch of the four processes, also under pytest-xdist): the checks."""
    _check_compare_multiworker_and_mirrored_equal_one_process(runs)
    _check_probe_train_multiworker_matches_one_process(runs)
    _check_finetune_loss_of_two_workers_matches_one_process(runs)
    _check_restore_multiworker_and_mirrored_equal_one_process(runs)
    _check_only_the_chief_writes(runs)
