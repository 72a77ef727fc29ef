"""Pictures of a reproduction report's sections, taken with a headless Chromium.

    python docs/img/report_pictures.py runs/reproduce/report.html docs/img

Each ``<h2>`` section of ``report.html`` is written to a page of its own (beside the report, so
the shared plotly.js is found), rendered by ``chromium --headless --screenshot`` and saved as
``report-<name>.png``. Needs a Chromium on the PATH (Debian: ``apt-get install chromium``);
nothing of the package is imported.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

#: (section heading starts with, picture name, window height in pixels)
SECTIONS = (
    ("Claims", "claims", 1480),
    ("2. Which layers", "comparison", 2000),
    ("3. Is syntax", "probes", 2000),
    ("Edge probes", "edge", 1900),
    ("Layer ablations", "ablations", 2000),
)


def section_pages(html: str) -> dict[str, str]:
    """``{heading text: a page with the report's head and that section only}``."""
    starts = [m.start() for m in re.finditer(r"<h2[\s>]", html)]
    end = html.rfind("</body>")
    head = html[: html.find("<body")]
    body_tag = re.search(r"<body[^>]*>", html).group(0)
    pages = {}
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else end
        part = html[start:stop]
        title = re.sub(r"<[^>]+>", "", part[: part.find("</h2>")]).strip()
        pages[title] = f"{head}{body_tag}{part}</body></html>"
    return pages


def main(report: str, out: str) -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium on the PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    report_path, out_dir = Path(report).resolve(), Path(out)
    pages = section_pages(report_path.read_text(encoding="utf-8"))
    for prefix, name, height in SECTIONS:
        title = next((t for t in pages if t.startswith(prefix)), None)
        if title is None:
            print(f"no section {prefix!r} in {report}", file=sys.stderr)
            continue
        page = report_path.with_name(f".picture-{name}.html")
        page.write_text(pages[title], encoding="utf-8")
        picture = (out_dir / f"report-{name}.png").resolve()
        try:
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--window-size=1280,{height}", "--virtual-time-budget=20000",
                 f"--screenshot={picture}", page.as_uri()],
                check=True, capture_output=True, timeout=180,
            )  # fmt: skip
        finally:
            page.unlink()
        print(f"{picture}: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
