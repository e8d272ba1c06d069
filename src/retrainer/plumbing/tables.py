"""Reading CSV, Parquet and JSONL files, with the line number of every row, whole or in chunks
of bounded size.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
>>> _ = p.write_text("id,x\\n1,2.5\\n2,3.0\\n3,1.0\\n")
>>> df = read_table(p)
>>> df["x"].tolist(), df["__line__"].tolist()
([2.5, 3.0, 1.0], [2, 3, 4])
>>> [c["__line__"].tolist() for c in iter_table(p, chunk_rows=2)]
[[2, 3], [4]]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
LINE = "__line__"
CHUNK_ROWS = 262_144  # rows read at once: what an ingest, predict or feedback holds in memory


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no suffix)'!r}. "
            "Use .csv, .parquet or .jsonl (optionally gzipped).",
            path=str(path),
        )
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole data file; adds ``__line__`` (1-based line in the file, or row in
    Parquet)."""
    import pandas as pd

    chunks = list(iter_table(path, chunk_rows=None))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def iter_table(path: str | Path, chunk_rows: int | None = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """A data file in frames of at most ``chunk_rows`` rows (None: one frame), each with
    ``__line__``. Raises InputError for a missing, empty, unreadable or row-less file."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputError(f"File {str(p)!r} does not exist.", path=str(p))
    fmt = file_format(p)
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty; it needs a header and at least one row.")
    rows = 0
    try:
        for chunk in _chunks(p, fmt, chunk_rows):
            rows += len(chunk)
            if len(chunk):
                yield chunk
    except InputError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(
            f"{p}: cannot be read as {fmt.upper()}: {str(exc).splitlines()[0]}. "
            "Check that the file type matches its suffix."
        ) from None
    if rows == 0:
        raise InputError(f"{p}: the file holds no rows.")


def _chunks(p: Path, fmt: str, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if fmt == "csv":
        first = 2
        if chunk_rows is None:
            readers: Any = [pd.read_csv(p, low_memory=False)]
        else:
            readers = pd.read_csv(p, chunksize=chunk_rows)
        for df in readers:
            df[LINE] = range(first, first + len(df))
            first += len(df)
            yield df
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        first = 1
        source = pq.ParquetFile(p)
        for batch in source.iter_batches(batch_size=chunk_rows or max(1, source.metadata.num_rows)):
            df = batch.to_pandas()
            df[LINE] = range(first, first + len(df))
            first += len(df)
            yield df
    else:
        yield from _jsonl(p, chunk_rows)


def _jsonl(p: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    import gzip
    import json

    import orjson

    opener: Any = gzip.open if p.suffix.lower() == ".gz" else open
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with opener(p, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:  # what orjson refuses but JSON readers commonly take (NaN, Infinity)
                    obj = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InputError(
                        f"{p}: line {n} is not valid JSON ({getattr(exc, 'msg', exc)}). Each "
                        "line must hold one JSON object."
                    ) from None
            if not isinstance(obj, dict):
                raise InputError(f"{p}: line {n} is not a JSON object.")
            records.append(obj)
            lines.append(n)
            if chunk_rows is not None and len(records) >= chunk_rows:
                yield _frame(records, lines)
                records, lines = [], []
    if records or not lines:
        yield _frame(records, lines)


def _frame(records: list[dict[str, Any]], lines: list[int]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame.from_records(records)
    df[LINE] = lines
    return df
