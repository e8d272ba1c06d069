"""The logged input rows that predictions point at, gathered for many (input key, row index)
pairs at once.

A logged request's input is stored once (see :mod:`retrainer.store.predlog`): the JSON text it
arrived in (one or a few rows, the REST path) or Parquet bytes of a batch's feature columns
(the CLI's batch predict). Feedback needs, for each prediction an actual joins, the row that
prediction scored. :func:`gather` takes every JSON row of a call in one pass into one frame
(one pandas and one Arrow conversion for the whole call, whatever the number of requests) and
each Parquet input with one ``take``; nothing is converted per request.

>>> import numpy as np, pyarrow as pa
>>> stored = [[{"x": 1.5, "c": "a"}, {"x": 2.5}], None, pa.table({"x": [7.0, 8.0]})]
>>> table, where = gather(stored, np.array([2, 0, 1, 0]), np.array([1, 1, 0, 0]), ["x", "c"])
>>> table.to_pydict(), where.tolist()
({'x': [8.0, 2.5, 1.5], 'c': [None, None, 'a']}, [0, 1, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_GONE, _TABLE, _ROWS = 0, 1, 2  # what is stored under a key: nothing, Parquet, JSON rows


def gather(
    stored: Sequence[Any], codes: np.ndarray, rows: np.ndarray, columns: Sequence[str]
) -> tuple[pa.Table, np.ndarray]:
    """The input rows of (input, row index) pairs as one Arrow table of ``columns`` (missing
    ones null) in the order of the pairs, and each row's position among the pairs.

    ``stored[k]`` is input ``k``: a pyarrow table (a batch's Parquet input), the list of its
    JSON rows, or None when it is gone (its pairs are left out); ``codes[i]`` and ``rows[i]``
    name pair ``i``'s input and row. A JSON row index out of range, or a row that is not an
    object, gives nulls. JSON rows are typed as one pandas frame of every pair's row would
    type them (an integer column with a missing value becomes float64, as it always did)."""
    import numpy as np
    import pyarrow as pa

    codes = np.asarray(codes, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    kinds = np.array([_kind(s) for s in stored], dtype=np.int8)
    of_pair = kinds[codes] if len(codes) else np.empty(0, dtype=np.int8)
    parts: list[pa.Table] = []
    positions: list[np.ndarray] = []
    json_pairs = np.flatnonzero(of_pair == _ROWS)
    if len(json_pairs):
        parts.append(_json_rows(stored, codes[json_pairs], rows[json_pairs], columns))
        positions.append(json_pairs)
    table_pairs = np.flatnonzero(of_pair == _TABLE)
    if len(table_pairs):
        by_input = table_pairs[np.argsort(codes[table_pairs], kind="stable")]
        cuts = np.flatnonzero(np.diff(codes[by_input])) + 1
        for group in np.split(by_input, cuts):
            parts.append(_table_rows(stored[int(codes[group[0]])], rows[group], columns))
            positions.append(group)
    if not parts:
        return pa.table({c: pa.nulls(0) for c in columns}), np.empty(0, dtype=np.int64)
    table = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
    where = np.concatenate(positions)
    if len(where) < 2 or bool((where[1:] > where[:-1]).all()):
        return table, where  # in order already: every pair's input is JSON, or one batch's
    back = np.argsort(where, kind="stable")
    return table.take(pa.array(back)), where[back]


def _kind(stored: Any) -> int:
    import pyarrow as pa

    if stored is None:
        return _GONE
    return _TABLE if isinstance(stored, pa.Table) else _ROWS


def _json_rows(
    stored: Sequence[Any], codes: np.ndarray, rows: np.ndarray, columns: Sequence[str]
) -> pa.Table:
    """The JSON rows of the pairs, in their order, as one table: one pass over the rows (a
    list lookup each), one frame, one conversion."""
    import pandas as pd
    import pyarrow as pa

    picked = [_row(stored[k], r) for k, r in zip(codes.tolist(), rows.tolist(), strict=True)]
    frame = pd.DataFrame.from_records(picked, columns=list(columns))
    return pa.Table.from_pandas(frame, preserve_index=False)


def _row(rows: list[Any], r: int) -> Any:
    if 0 <= r < len(rows):
        row = rows[r]
        if isinstance(row, dict):
            return row
    return {}


def _table_rows(stored: pa.Table, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """Rows of one batch input as a table of ``columns`` (null where the input has none)."""
    import pyarrow as pa

    part = stored.take(pa.array(rows))
    have = set(part.column_names)
    return pa.table({c: part[c] if c in have else pa.nulls(part.num_rows) for c in columns})
