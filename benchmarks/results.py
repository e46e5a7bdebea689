"""Where benchmark figures go: docs/benchmarks.md, one marked section per benchmark, with the machine."""

from __future__ import annotations

import argparse
import platform
import re
from collections.abc import Callable, Mapping
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


Part = Callable[[argparse.Namespace], tuple[str, str]]


def run_parts(parser: argparse.ArgumentParser, parts: Mapping[str, Part]) -> None:
    """`--part NAME|all` and `--no-write` on `parser`; run the parts asked for, print and record each."""
    parser.add_argument("--part", choices=(*parts, "all"), default="all")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args()
    for name, part in parts.items():
        if args.part in (name, "all"):
            marker, section = part(args)
            print("\n" + section)
            if not args.no_write:
                write_section(marker, section)
                print("written to docs/benchmarks.md")
