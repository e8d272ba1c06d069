"""Reading one stored segment by the store's URL, from any process (a Dask worker).

The training window of ``training.engine: dask`` is read on the workers, one partition per
segment: each task opens the store by its URL (once per process: the engine is kept) and
fetches and decodes its own segment, filtered to the window, so the process that runs the
training never holds the window. A SQLite store must be a file the workers can open at the
same path (a LocalCluster, or a shared disk); PostgreSQL is reached over the network.

>>> import pandas as pd, pathlib, tempfile
>>> from retrainer.store import SqlStore
>>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 's.db'}"
>>> store = SqlStore(url)
>>> _ = store.add_training_frame("m", pd.DataFrame({"entity_id": ["a", "b"],
...     "event_time": pd.to_datetime(["2026-01-01", "2026-01-02"]), "target": [0, 1],
...     "x": [0.5, 1.5]}), "file")
>>> seg = store.segments("m", "rows")[0]
>>> read_segment(url, seg.id, ["entity_id", "event_time", "target", "x"],
...              [("event_time", ">=", pd.Timestamp("2026-01-02").to_pydatetime())])["x"].tolist()
[1.5]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from .engine import make_engine, safe_url
from .segments import decode

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Engine


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    return make_engine(url)


def read_segment(
    url: str, segment: int, columns: Sequence[str], filters: Any = None
) -> pd.DataFrame:
    """Segment ``segment`` of the store at ``url``: ``columns`` (those missing from it come
    back empty, as a stored frame of an older schema would), rows meeting ``filters``
    (see :func:`retrainer.store.segments.decode`), ``event_time`` as datetimes. A segment
    replaced since it was listed (a ``rows delete``) is an InputError naming it."""
    import pandas as pd
    from sqlalchemy import select

    from . import schema as t

    with _engine(url).connect() as conn:
        row = conn.execute(select(t.segments.c.data).where(t.segments.c.id == segment)).first()
    if row is None:
        raise InputError(
            f"Segment {segment} of the store {safe_url(url)!r} is gone (rows were deleted "
            "while the training read them). Train again."
        )
    frame = decode(bytes(row[0]), columns, filters).to_pandas()
    for c in columns:
        if c not in frame.columns:
            frame[c] = None
    frame = frame[list(columns)]
    frame["event_time"] = pd.to_datetime(frame["event_time"])
    return frame
