"""Run a command, pass its output through, then print its wall time and peak memory.

Used by ``.ci/run`` so that every CI log shows how long the suite took and how much memory its
largest process held (the budget: 8 minutes, 4 GB). The test runner's closing line is printed
again last, so it stays the log's final line. Standard library only: runs before ``.venv``.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import time

SUMMARY = re.compile(r"\b\d+ (passed|failed)\b")


def main(argv: list[str]) -> int:
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary = None
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if SUMMARY.search(line):
            summary = line.strip()
    code = proc.wait()
    seconds = time.monotonic() - start
    # ru_maxrss of waited-for descendants: the peak resident set of the largest one (KiB).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nci: `{' '.join(argv)}` took {seconds:.0f} s (install included when .venv is new)")
    print(f"ci: peak resident memory of the largest process: {peak_mb:,.0f} MB")
    if summary:
        print(summary)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
