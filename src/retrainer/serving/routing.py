"""Which loaded version scores a batch: the rollout's route for the batch's first entity id
(else the request id), so every row of one request is scored by one version; a challenger
that failed to load gives its traffic to the champion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import NoChampion
from ..core.routing import Route, route

if TYPE_CHECKING:
    from .model_holder import Loaded, Served


def pick(served: Served, name: str, rows: Sequence[Any], id_column: str, rid: str) -> tuple[
    Loaded, Route
]:  # fmt: skip
    """The loaded version and the route for ``rows`` of model ``name``."""
    first = rows[0]
    key = first.get("entity_id", first.get(id_column)) if type(first) is dict else None
    r = route(served.roles, str(key) if type(key) in (str, int) else rid)
    loaded = served.pick(r)
    if loaded is None:  # the challenger failed to load: its traffic goes to the champion
        loaded = served.champion
        if loaded is None:
            raise NoChampion(
                f"Model {name!r}: champion {served.roles.champion} is not loaded (it "
                "failed verification); see /ready and the server log."
            )
        r = Route(loaded.version, "champion")
    return loaded, r
