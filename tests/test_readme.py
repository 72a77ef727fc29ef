"""The README and ``docs/*.md`` run as written.

Every fenced code block of ``README.md`` and of each ``docs/*.md`` (found by glob, so a new page
is covered when it appears) is either run here or marked, on the line before it, with
``<!-- not-run: REASON -->`` (a GPU job, a ``pip install``, a ``make`` target, BibTeX):

- ``python`` blocks run in order, one namespace per file (like a notebook), in a temporary
  working folder, on the offline default MiniLM and the shared data;
- every ``bert-repro ...`` line of every ``sh`` block, marked or not, is parsed by the real
  parser (``bert_repro.cli.build_parser``), so no documented command can drift from the
  command line; an ``sh`` block with any other line must be marked ``not-run``;
- an ``sh`` block marked ``<!-- run: ... -->`` is executed (``bert_repro.cli.main``) and the
  ``text`` block right after it is its output: each of its lines must be printed, numbers
  within 5e-4;
- a ``text`` block must be such an output; other languages must be marked.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARK = re.compile(r"<!--\s*(not-run|run)\s*(?::\s*(.*?))?\s*-->\s*$")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
CLI_PREFIX = re.compile(r"^(?:/usr/bin/time(?: -v)?\s+)?(?:\S*/)?bert-repro(?:\s|$)")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text, and the mark before it."""

    path: Path
    line: int
    lang: str
    code: str
    mark: str | None  # "run", "not-run" or None
    reason: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.lang or 'no language'})"


def documents() -> list[Path]:
    """README.md and every docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file, each with the marker comment on the line before
    it (blank lines in between allowed)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = [ln for ln in text[: m.start()].rstrip("\n").split("\n")[-3:] if ln.strip()]
        mark = MARK.search(before[-1]) if before else None
        found.append(
            Block(
                path=path,
                line=text.count("\n", 0, m.start()) + 1,
                lang=m.group(1).lower(),
                code=m.group(2),
                mark=mark.group(1) if mark else None,
                reason=(mark.group(2) or "").strip() if mark else "",
            )
        )
    return found


def shell_commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.split("\n"):
        words = shlex.split(line, comments=True)
        if words:
            out.append(shlex.join(words))
    return out


def cli_argv(command: str) -> list[str] | None:
    """The arguments after ``bert-repro`` (also ``/usr/bin/time -v .venv/bin/bert-repro``),
    or None for any other command."""
    if not CLI_PREFIX.match(command):
        return None
    words = shlex.split(command)
    start = next(i for i, w in enumerate(words) if w.endswith("bert-repro"))
    return words[start + 1 :]


ALL_BLOCKS = [b for path in documents() for b in blocks(path)]


def test_the_documents_have_code_blocks_and_the_parser_finds_their_marks():
    readme = [b for b in ALL_BLOCKS if b.path.name == "README.md"]
    assert sum(b.lang == "python" for b in readme) >= 3
    assert [b.mark for b in readme].count("run") == 1
    assert blocks(ROOT / "README.md") == readme  # the same file read twice, the same blocks
    text = "x\n<!-- not-run: a reason -->\n\n```sh\nmake demo\n```\n\n```python\npass\n```\n"
    path = ROOT / "docs" / "_example.md"
    try:
        path.write_text(text)
        first, second = blocks(path)
    finally:
        path.unlink()
    assert (first.lang, first.mark, first.reason, first.line) == ("sh", "not-run", "a reason", 4)
    assert (second.lang, second.mark, second.code) == ("python", None, "pass\n")


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=str)
def test_every_block_is_run_or_marked_with_a_reason(block):
    if block.mark == "not-run":
        assert block.reason, f"{block}: say why it is not run: <!-- not-run: REASON -->"
        return
    previous = [b for b in ALL_BLOCKS if b.path == block.path and b.line < block.line]
    if block.lang == "python":
        return  # run by test_python_blocks_run
    if block.lang == "sh":
        others = [c for c in shell_commands(block.code) if cli_argv(c) is None]
        assert not others, (
            f"{block}: only bert-repro commands are checked; mark the block "
            f"<!-- not-run: REASON --> for {others}"
        )
        return
    if block.lang == "text":
        assert previous and previous[-1].mark == "run", (
            f"{block}: a text block must be the output of the <!-- run --> block before it, "
            "or be marked <!-- not-run: REASON -->"
        )
        return
    pytest.fail(f"{block}: run it as python or sh, or mark it <!-- not-run: REASON -->")


SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "sh"]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=str)
def test_documented_commands_parse(block):
    from bert_repro.cli import build_parser

    parser = build_parser()
    for command in shell_commands(block.code):
        argv = cli_argv(command)
        if argv is None:
            continue
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
        except SystemExit as exit_:
            assert exit_.code == 0, f"{block}: `{command}` does not parse:\n{err.getvalue()}"


def test_the_readme_python_code_is_clean():
    """No unused imports, no undefined names (the README's example once had both)."""
    for path in documents():
        code = "\n".join(b.code for b in blocks(path) if b.lang == "python" and b.mark is None)
        if not code:
            continue
        out = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--select", "F", "--no-cache", "-"],
            input=code,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 0, f"{path.name}'s python blocks:\n{out.stdout}{out.stderr}"


def _numbers_close(expected: str, actual: str, tol: float = 5e-4) -> bool:
    if NUMBER.sub("#", expected) != NUMBER.sub("#", actual):
        return False
    pairs = zip(NUMBER.findall(expected), NUMBER.findall(actual), strict=True)
    return all(abs(float(e) - float(a)) <= tol for e, a in pairs)


@pytest.mark.integration
def test_the_first_command_prints_what_the_readme_shows(tmp_path, monkeypatch):
    from bert_repro.cli import main

    readme = blocks(ROOT / "README.md")
    i = next(i for i, b in enumerate(readme) if b.mark == "run")
    command_block, output_block = readme[i], readme[i + 1]
    assert output_block.lang == "text"
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    for command in shell_commands(command_block.code):
        with contextlib.redirect_stdout(printed):
            assert main(cli_argv(command)) == 0, command
    actual = printed.getvalue().splitlines()
    for line in output_block.code.splitlines():
        assert any(_numbers_close(line, got) for got in actual), (
            f"README line {line!r} was not printed by `{command_block.code.strip()}`; it "
            "printed:\n" + "\n".join(actual)
        )


@pytest.mark.integration
@pytest.mark.parametrize(
    "path",
    [p for p in documents() if any(b.lang == "python" and b.mark is None for b in blocks(p))],
    ids=lambda p: p.name,
)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks(path):
        if block.lang == "python" and block.mark is None:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(block.code, str(block), "exec"), namespace)  # noqa: S102
    if path.name == "README.md":
        # what the blocks computed, checked against the first command and the maths
        result = namespace["result"].to_frame()
        assert (result["cosine"] > 0.99).all() and (result["cka"] > 0.99).all()
        assert namespace["sims"].shape == (namespace["num_layers"] + 1,)
        assert 0.0 < namespace["scores"]["uuas"] <= 1.0
        assert (tmp_path / "runs" / "api" / "compare").is_dir()
        # the API's "bank" vs "bank" is the first command's number (same recipe and pooling)
        output = next(b for b in blocks(path) if b.lang == "text").code
        shown = float(re.search(r"similarity: (\S+)", output).group(1))
        cosine = namespace["cosine_similarity"](namespace["bank_river"], namespace["bank_money"])
        assert float(cosine) == pytest.approx(shown, abs=5e-4)
