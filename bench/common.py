"""Helpers shared by the benchmarks: machine facts, worker subprocesses, peak memory, tables.

Imports only the standard library, so peer venvs (without retrainer) can use it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work"  # git-ignored scratch space
RESULT_PREFIX = "BENCH-RESULT "


def machine() -> str:
    """One line: CPU count and model, memory, OS, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    cpu = f"{os.cpu_count()} CPU" + (f" ({model})" if model else "")
    return (
        f"{cpu}, {mem_gb:.1f} GiB memory, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def rss_mb() -> float:
    """Current resident set size of this process, in MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process and of its waited-for children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # kilobytes on Linux


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result as the one line :func:`run_worker` reads."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(argv: Sequence[str], *, python: str | None = None, timeout: float = 3600) -> Any:
    """Run ``python -m <argv>`` from the repo root in a fresh process; return its result.

    A separate process per measurement keeps peak-RSS figures apart.
    """
    cmd = [python or sys.executable, "-m", *argv]
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-25:])
        raise RuntimeError(f"Worker {' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result.setdefault("process_seconds", time.perf_counter() - started)
    return result


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def seconds(value: float) -> str:
    return (
        f"{value * 1000:.0f} ms"
        if value < 1
        else f"{value:.2f} s"
        if value < 10
        else f"{value:.1f} s"
    )


def megabytes(value: float) -> str:
    return f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB"


def venv_versions(venv: Path) -> dict[str, str]:
    """Installed distributions of a venv (lower-case name -> version), read without running it."""
    sites = [str(p) for p in venv.glob("lib/python*/site-packages")]
    if not sites:
        return {}
    return {
        str(d.metadata["Name"]).lower(): d.version
        for d in importlib.metadata.distributions(path=sites)
    }


def ensure_venv(venv: Path, requires: dict[str, str]) -> str:
    """A peer's own venv (git-ignored ``.bench-venv-*``), created or fixed when it does not
    hold ``requires`` (name -> version, or a specifier such as "<3"); returns its python."""
    python = venv / "bin" / "python"
    pinned = {k: v for k, v in requires.items() if v[:1].isdigit()}
    found = venv_versions(venv)
    if python.exists() and all(found.get(k) == v for k, v in pinned.items()):
        return str(python)
    base = getattr(sys, "_base_executable", None) or sys.executable
    specs = [f"{k}=={v}" if v[:1].isdigit() else f"{k}{v}" for k, v in requires.items()]
    print(f"creating {venv.name}: {' '.join(specs)}", file=sys.stderr, flush=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *specs], check=True)
    return str(python)


def check_same_data(results: dict[str, Any]) -> None:
    """Fail unless every worker reporting a ``fingerprint`` of a data set saw the same one."""
    seen: dict[str, tuple[str, str]] = {}
    for method, result in results.items():
        for name, digest in result.get("fingerprint", {}).items():
            if name in seen and seen[name][1] != digest:
                raise RuntimeError(
                    f"{method} saw other {name} data than {seen[name][0]}: the generator is "
                    "not deterministic across the venvs (different numpy versions?)."
                )
            seen.setdefault(name, (method, digest))
