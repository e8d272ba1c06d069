"""Run benchmarks and rewrite docs/benchmarks.md.

    python -m bench [--quick] [--only NAME ...] [--output PATH]

Every module in ``BENCHES`` runs in order (or only those named). Each section sits between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers: sections of benches not run this
time are kept as they were, so one bench can be rerun alone. Each section is written as soon
as its bench ends.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import importlib
import os
import platform
import re
import sys
import time
from pathlib import Path

from .common import REPO, WORK, machine

BENCHES = [
    "drift",
    "families",
    "finetune",
    "monitoring",
    "ingestion",
    "serving",
    "compiled",
    "quality",
    "scale",
    "fleet",
    "fleet-pg",
    "fleet_serving",
    "fleet_ui",
    "faults",
    "search",
    "faults-serving",
    "fuzz",
    "pglog",
    "dask",
    "dask-over",
    "dask-choice",
    "feedback",
    "dask-drift",
    "previous",
]
# module of another name
MODULES = {
    "fuzz": "fuzz_api",
    "faults-serving": "faults_serving",
    "fleet-pg": "fleet_pg",
    "dask": "dask_window",
    "dask-over": "dask_over",
    "dask-choice": "dask_choice",
    "dask-drift": "dask_drift",
}

DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
_SECTION = re.compile(
    r"<!-- bench:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n?", re.S
)


def read_sections(text: str) -> dict[str, str]:
    """Sections of an existing benchmarks page, by name (markers included)."""
    return {m["name"]: m.group(0).rstrip("\n") + "\n" for m in _SECTION.finditer(text)}


def wrap(name: str, body: str, quick: bool, elapsed: float) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "quick mode" if quick else "full run"
    return (
        f"<!-- bench:{name} -->\n{body.rstrip()}\n\n"
        f"_Measured {stamp} ({mode}, {elapsed:.0f} s) on {machine()}._\n"
        f"<!-- /bench:{name} -->\n"
    )


def listed_versions(text: str) -> dict[str, str]:
    """The versions line of an existing page's header, by name.

    >>> listed_versions("- Versions: python 3.11.7, evidently 0.7.23 (own venv, pandas 2.3.3)")
    {'python': '3.11.7', 'evidently': '0.7.23 (own venv, pandas 2.3.3)'}
    """
    m = re.search(r"^- Versions: (.*)$", text, re.M)
    if m is None:
        return {}
    items = (item.split(" ", 1) for item in re.split(r", (?![^()]*\))", m[1]))
    return {item[0]: item[1] for item in items if len(item) == 2}


def header(modules: list[str], kept: dict[str, str] | None = None) -> str:
    """The page's header; ``kept``: peer versions of sections kept from the page before, whose
    peers' venvs need not exist now."""
    versions = {"python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scipy"):
        with contextlib.suppress(ImportError):
            versions[pkg] = importlib.import_module(pkg).__version__
    versions.update({k: v for k, v in (kept or {}).items() if k not in versions})
    for name in modules:
        peers = getattr(importlib.import_module(f"bench.{MODULES.get(name, name)}"), "peers", None)
        if peers is not None:
            versions.update(peers())
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (
        "# Benchmarks\n\n"
        "Written by `python -m bench` (`make bench`); rerun one with "
        "`python -m bench --only NAME`. Each section names when and where it was measured.\n\n"
        f"- Machine: {machine()}\n"
        f"- Last written: {dt.date.today().isoformat()}\n"
        f"- Versions: {listed}\n"
    )


def write_page(output: Path, new: dict[str, str]) -> None:
    """Replace sections ``new`` in the page and keep the others.

    The page is read under a lock just before writing, so benches that finish at the same
    time in other processes do not undo each other's sections.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "benchmarks.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = output.read_text() if output.exists() else ""
        sections = read_sections(before)
        sections.update(new)
        ordered = [sections[n] for n in BENCHES if n in sections]
        ordered += [s for n, s in sections.items() if n not in BENCHES]  # kept, not ours to drop
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".tmp")
        kept = listed_versions(before) if set(sections) - set(new) else {}
        partial.write_text(header(list(new), kept) + "\n" + "\n".join(ordered))
        os.replace(partial, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no slow peers")
    parser.add_argument("--only", action="append", metavar="NAME", help=f"one of {BENCHES}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    unknown = [n for n in args.only or [] if n not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {unknown}; known: {', '.join(BENCHES)}")
    names = args.only or BENCHES
    for name in names:
        print(f"== bench {name}{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        body = importlib.import_module(f"bench.{MODULES.get(name, name)}").run(args.quick)
        write_page(args.output, {name: wrap(name, body, args.quick, time.perf_counter() - started)})
        print(body, flush=True)
        print(f"wrote section {name} of {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
