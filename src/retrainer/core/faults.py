"""Named fault points for crash tests: inert unless ``RETRAINER_FAULT`` names the point.

A test sets ``RETRAINER_FAULT=train.after_register`` (several names: comma-separated) in a
subprocess's environment; when that process reaches ``fault_point("train.after_register")``
it kills itself with SIGKILL, exactly as a crash there would. In production the variable is
unset and a fault point costs one dictionary lookup.

>>> fault_point("doc.example", environ={})  # not named: nothing happens
>>> armed("a.b", {"RETRAINER_FAULT": "x.y, a.b"})
True
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

ENV = "RETRAINER_FAULT"


def armed(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``RETRAINER_FAULT`` names the point ``name``."""
    value = (os.environ if environ is None else environ).get(ENV)
    return bool(value) and name in {p.strip() for p in str(value).split(",")}


def fault_point(name: str, environ: Mapping[str, str] | None = None) -> None:
    """Kill this process with SIGKILL here when ``RETRAINER_FAULT`` names ``name``."""
    if armed(name, environ):
        os.kill(os.getpid(), signal.SIGKILL)
