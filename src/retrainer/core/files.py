"""Writing an output file the user named (scored rows, a report, a backup) so that a failure
leaves nothing half-written, without ever replacing what is not a regular file.

A regular file is written under a temporary name beside it and renamed over it at the end, so
readers see the old file or the whole new one. A device or pipe (``/dev/stdout``,
``/dev/null``, a FIFO) is written in place: renaming over it would replace the device with a
file (for root, ``/dev/null`` itself). A folder is an error naming it.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     target = Path(d) / "out" / "scores.csv"
...     with atomic_output(target, what="predict --out") as tmp:
...         _ = tmp.write_text("id,p\\n")
...         hidden = tmp != target
...     hidden, target.read_text(), sorted(p.name for p in target.parent.iterdir())
(True, 'id,p\\n', ['scores.csv'])
>>> with atomic_output(Path("/dev/null"), what="predict --out") as tmp:
...     _ = tmp.write_text("discarded")
>>> tmp, Path("/dev/null").is_char_device()
(PosixPath('/dev/null'), True)
"""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


def in_place(path: Path) -> bool:
    """True when ``path`` exists and is neither a regular file nor a folder (a device, a pipe,
    a socket): output goes straight into it."""
    try:
        mode = path.stat().st_mode  # follows symlinks: /dev/stdout -> /proc/self/fd/1
    except (FileNotFoundError, NotADirectoryError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextmanager
def atomic_output(path: Path, *, what: str) -> Iterator[Path]:
    """The path to write ``path``'s content to (see the module). The parent folder is made;
    ``what`` names the output in errors (e.g. "predict --out")."""
    if path.is_dir():
        raise InputError(
            f"{what}: {str(path)!r} is a folder. Give a file name, e.g. {str(path / 'out')!r}."
        )
    if in_place(path):
        yield path
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{what}: cannot create the folder {str(path.parent)!r}: {exc.strerror}. Pick a "
            "path in a folder you can write."
        ) from exc
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        yield tmp
        if not tmp.exists():
            tmp.touch()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
