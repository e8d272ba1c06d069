"""How tests wait: poll a condition until it holds, up to a generous deadline that names what
it waited for. No test asserts how fast something happens.

Each deadline is far above (at least 5×, mostly 50×) what the wait takes on a quiet 2-core
machine, so the suite holds on a busy one (load 8 on 2 cores); a real hang still ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SERVER_START = 300.0  # a server (in-process or `retrainer serve`) answering: 1-3 s when quiet
CATCH_UP = 120.0  # background work catching up (log writer, reload, a job, an alert): < 5 s
SUBPROCESS = 600.0  # a CLI, generator or quick bench run to its end: < 60 s when quiet


def wait_until(check: Callable[[], T], what: str, timeout: float = CATCH_UP) -> T:
    """Poll ``check()`` until it returns something truthy and return that; fail naming
    ``what`` after ``timeout`` seconds.

    >>> wait_until(lambda: 3, "three")
    3
    >>> wait_until(lambda: 0, "a miracle", timeout=0.1)
    Traceback (most recent call last):
    ...
    AssertionError: waited 0.1 s for a miracle
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
