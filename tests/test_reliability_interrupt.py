"""Interruptions (issue 8): a probe sweep killed with SIGKILL resumes without redoing finished
probes or features; result files are written atomically, so a reader never sees half a file.
(The feature cache under SIGKILL and two writers: tests/test_cache_processes.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import bert_repro.cache
import bert_repro.io
from bert_repro.cli import main
from bert_repro.io import atomic_write_json

PROBE_LINE = re.compile(r"^\s+(distance|depth)\s+layer\s+\d+: ")


def sweep_argv(model_dir, ewt_dev, out, cache):
    return [
        "probe", "sweep",
        "--model", f"tiny={model_dir}",
        "--train", str(ewt_dev), "--dev", str(ewt_dev), "--test", str(ewt_dev),
        "--limit", "30", "--rank", "4", "--epochs", "2", "--too-long", "skip",
        "--out", str(out), "--cache-dir", str(cache),
    ]  # fmt: skip


@pytest.mark.integration
def test_killed_sweep_resumes_and_skips_finished_probes(
    tiny_bert_dir, ewt_dev, tmp_path, monkeypatch, capsys
):
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    argv = sweep_argv(tiny_bert_dir, ewt_dev, out, cache)
    code = f"import sys\nfrom bert_repro.cli import main\nsys.exit(main({argv!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    finished = 0
    try:
        for line in proc.stdout:
            if PROBE_LINE.match(line):
                finished += 1
                if finished == 2:
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert finished == 2 and proc.returncode == -signal.SIGKILL
    before = {
        (r["kind"], r["layer"]): r for r in json.loads((out / "results.json").read_text())["rows"]
    }
    assert 2 <= len(before) < 6

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again instead of read from the cache")

    monkeypatch.setattr(bert_repro.cache, "_fill", no_extraction)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    todo = 6 - len(before)
    trained = [line for line in printed.splitlines() if PROBE_LINE.match(line)]
    assert f"{todo} of 6 probes to train" in printed and len(trained) == todo
    after = {
        (r["kind"], r["layer"]): r for r in json.loads((out / "results.json").read_text())["rows"]
    }
    assert len(after) == 6
    for key, row in before.items():  # finished probes were kept as they were
        assert after[key] == row
    for row in after.values():
        assert row["dev_uuas" if row["kind"] == "distance" else "dev_root_acc"] is not None
    assert (out / "results.csv").read_text().count("\n") == 7


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from bert_repro.plot.result import ComparisonResult

    result = ComparisonResult(names=("ft",), cosine=np.array([[1.0, 0.9, 0.8]]), n_texts=3)
    result.save(tmp_path, png=False)
    old = (tmp_path / "results.json").read_text()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bert_repro.io.os, "replace", disk_full)
    changed = ComparisonResult(names=("ft",), cosine=np.array([[0.5, 0.5, 0.5]]), n_texts=3)
    with pytest.raises(OSError):
        changed.save(tmp_path, png=False)
    assert (tmp_path / "results.json").read_text() == old
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


WRITER = textwrap.dedent(
    """
    import sys
    from bert_repro.io import atomic_write_json
    path = sys.argv[1]
    big = {"pad": "x" * 2_000_000}
    i = 0
    while True:
        atomic_write_json(path, {"version": i, **big, "end": i})
        i += 1
        print(i, flush=True)
    """
)


def test_a_reader_never_sees_half_a_result_file_while_the_writer_is_killed(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"version": -1, "end": -1})
    for delay in (0.05, 0.2, 0.45):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        proc.stdout.readline()  # at least one whole write happened
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            data = json.loads(path.read_text())  # always a whole file
            assert data["version"] == data["end"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        data = json.loads(path.read_text())
        assert data["version"] == data["end"] >= 0
