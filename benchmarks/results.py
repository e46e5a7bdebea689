"""Where benchmark figures go: docs/benchmarks.md, one marked section per benchmark, with the machine."""

from __future__ import annotations

import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    """The machine line every figure is recorded with."""
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return (
        f"{platform.machine()}, {cpu.group(1) if cpu else 'unknown CPU'}, Python {platform.python_version()}"
    )


def write_section(name: str, section: str) -> None:
    """Replace this benchmark's section (between `<!-- name:start/end -->`), or append it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{section}{end}\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    DOC.write_text(text)
