"""Reading CSV, Parquet and JSONL files, with the line number of every row.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
>>> _ = p.write_text("id,x\\n1,2.5\\n2,3.0\\n")
>>> df = read_table(p)
>>> df["x"].tolist(), df["__line__"].tolist()
([2.5, 3.0], [2, 3])
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..core.errors import InputError

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
LINE = "__line__"


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
    """Read a data file; adds ``__line__`` (1-based line in the file, or row in Parquet)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"File {str(p)!r} does not exist.", path=str(p))
    fmt = file_format(p)
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty; it needs a header and at least one row.")
    try:
        if fmt == "csv":
            df = pd.read_csv(p, low_memory=False)
            df[LINE] = range(2, len(df) + 2)
        elif fmt == "parquet":
            df = pd.read_parquet(p)
            df[LINE] = range(1, len(df) + 1)
        else:
            df = _read_jsonl(p)
    except InputError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(
            f"{p}: cannot be read as {fmt.upper()}: {str(exc).splitlines()[0]}. "
            "Check that the file type matches its suffix."
        ) from None
    if df.empty:
        raise InputError(f"{p}: the file holds no rows.")
    return df


def _read_jsonl(p: Path) -> pd.DataFrame:
    import gzip

    opener = gzip.open if p.suffix.lower() == ".gz" else open
    records, lines = [], []
    with opener(p, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{p}: line {n} is not valid JSON ({exc.msg}). Each line must hold one "
                    "JSON object."
                ) from None
            if not isinstance(obj, dict):
                raise InputError(f"{p}: line {n} is not a JSON object.")
            records.append(obj)
            lines.append(n)
    df = pd.DataFrame.from_records(records)
    df[LINE] = lines
    return df
