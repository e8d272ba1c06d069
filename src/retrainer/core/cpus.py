"""How many CPUs this process may use: the smaller of its CPU affinity and its cgroup quota.

``os.cpu_count()`` counts the machine's CPUs. A container limited to two CPUs on a 64-core
host, or a process pinned to one core, sees 64 there; a thread pool of that size then
spin-waits on cores it does not get. The affinity mask (``sched_getaffinity``) says which
cores the scheduler may put this process on; the cgroup quota (v2 ``cpu.max``, v1
``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``) says how much CPU time it gets per period,
rounded up to whole CPUs. Reading them is cheap; nothing is cached, so a process moved to
another cgroup sees its new limit.

>>> n = available_cpus()
>>> 1 <= n <= (os.cpu_count() or 1)
True
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "cpu.max").write_text("150000 100000")
>>> cgroup_cpu_limit(root)
2
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(root: str | Path = CGROUP_ROOT) -> int:
    """The CPUs this process may use: affinity, capped by the cgroup quota; at least 1.

    ``root`` is where the cgroup filesystem is mounted (tests pass a folder of fake files).

    >>> available_cpus("/nonexistent") == affinity_cpus()
    True
    """
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, limit)
    return max(1, cpus)


def affinity_cpus() -> int:
    """The cores the scheduler may run this process on (``os.cpu_count()`` where the platform
    has no affinity mask); at least 1.

    >>> affinity_cpus() >= 1
    True
    """
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return max(1, len(getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def cgroup_cpu_limit(root: str | Path = CGROUP_ROOT) -> int | None:
    """The cgroup CPU quota in whole CPUs (rounded up, at least 1), or None when there is no
    quota or no readable cgroup files. cgroup v2 (``cpu.max``) is read first, then v1.

    >>> cgroup_cpu_limit("/nonexistent") is None
    True
    """
    base = Path(root)
    v2 = _read(base / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) >= 2 and parts[0] != "max":
            return _whole_cpus(parts[0], parts[1])
        if parts and parts[0] == "max":
            return None
    quota = _read(base / "cpu" / "cpu.cfs_quota_us")
    period = _read(base / "cpu" / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return _whole_cpus(quota, period)


def _whole_cpus(quota: str, period: str) -> int | None:
    """Quota over period rounded up; None for no limit (-1) or numbers that do not parse."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
