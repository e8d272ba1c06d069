"""Which arm answers a request, from the rollout state alone (pure, no I/O).

A/B and canary assignment is sticky: a hash of the entity id picks a point in [0, 1); the
entity goes to the challenger when the point falls below the challenger's fraction, so a
canary that steps from 5% to 25% keeps its first 5% on the challenger. Requests without an
entity id hash their request id instead.

>>> from retrainer.core.entities import Challenger, Roles
>>> from datetime import datetime
>>> roles = Roles("m", "1.0.0", Challenger("1.1.0", "ab", 0.5, datetime(2024, 1, 1)))
>>> r = route(roles, "customer-42")
>>> (r.version, r.arm) in {("1.0.0", "champion"), ("1.1.0", "challenger")}
True
>>> r == route(roles, "customer-42")  # sticky
True
>>> route(Roles("m", "1.0.0", Challenger("1.1.0", "shadow", 1.0, datetime(2024, 1, 1))), "x")
Route(version='1.0.0', arm='champion', shadow='1.1.0')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .entities import Roles
from .errors import NoChampion


@dataclass(frozen=True)
class Route:
    version: str
    arm: str  # "champion" | "challenger"
    shadow: str | None = None  # a version that also scores the request, logged only


def bucket(key: str) -> float:
    """A stable point in [0, 1) for a key (the first 8 bytes of its SHA-256).

    >>> bucket("a") == bucket("a"), 0 <= bucket("b") < 1
    (True, True)
    """
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(roles: Roles, key: str) -> Route:
    """Route one request (``key``: the entity id, else the request id)."""
    if roles.champion is None:
        raise NoChampion(
            f"Model {roles.model!r} has no champion to serve. Train and deploy one: "
            f"`retrainer train {roles.model} --deploy`."
        )
    ch = roles.challenger
    if ch is None:
        return Route(roles.champion, "champion")
    if ch.mode == "shadow":
        return Route(roles.champion, "champion", shadow=ch.version)
    if bucket(f"{roles.model}:{key}") < ch.fraction:
        return Route(ch.version, "challenger")
    return Route(roles.champion, "champion")
