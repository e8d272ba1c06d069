"""Writing an output file the user named (scored rows, a report, a backup) so that a failure
leaves nothing half-written, without ever replacing what is not a regular file and without
ever following a link planted beside it.

A regular file is written under a temporary name beside it and renamed over it at the end, so
readers see the old file or the whole new one. The temporary file is created exclusively
(``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600): a symlink or file someone planted at that
name is never opened, let alone written through; another fresh name is tried instead. The
caller writes through ``/proc/self/fd/N`` (on Linux), the very file created, so swapping the
name for a link while it is written changes nothing; before the rename the name must still be
that file. Just before the rename an output gets the mode a plain ``open`` would have given it
(0666 less the umask); one asked for as ``private`` (a backup) stays 0600.

A device or pipe (``/dev/stdout``, ``/dev/null``, a FIFO) is written in place: renaming over
it would replace the device with a file (for root, ``/dev/null`` itself). A folder is an
error naming it.

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

import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

_ATTEMPTS = 5  # fresh temporary names tried when one is taken
_FD_DIR = Path("/proc/self/fd")
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_FLAGS |= getattr(os, "O_CLOEXEC", 0)


def in_place(path: Path) -> bool:
    """True when ``path`` exists and is neither a regular file nor a folder (a device, a pipe,
    a socket): output goes straight into it."""
    try:
        mode = path.stat().st_mode  # follows symlinks: /dev/stdout -> /proc/self/fd/1
    except (FileNotFoundError, NotADirectoryError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def create_exclusive(path: Path, *, what: str) -> tuple[Path, int]:
    """A new, empty temporary file beside ``path`` (mode 0600) and its open descriptor.

    Created with ``O_EXCL | O_NOFOLLOW``: whatever already sits at a candidate name (a file, a
    planted symlink) is left alone and the next fresh name is tried.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> tmp, fd = create_exclusive(d / "x.csv", what="demo")
    >>> tmp.name.startswith(".x.csv.") and oct(tmp.stat().st_mode & 0o777)
    '0o600'
    >>> os.close(fd)
    """
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            return tmp, os.open(tmp, _FLAGS, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(
                f"{what}: cannot create a file in {str(path.parent)!r}: {exc.strerror}. Pick a "
                "path in a folder you can write."
            ) from exc
    raise InputError(
        f"{what}: {_ATTEMPTS} fresh temporary names beside {str(path)!r} were all taken (files "
        f"or links named .{path.name}.*.partial). Nothing was written through them; remove "
        "them, or write to a folder only you can write to."
    )


@contextmanager
def atomic_output(path: Path, *, what: str, private: bool = False) -> Iterator[Path]:
    """The path to write ``path``'s content to (see the module). The parent folder is made;
    ``what`` names the output in errors (e.g. "predict --out"); ``private`` keeps it 0600."""
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
    tmp, fd = create_exclusive(path, what=what)
    try:
        yield _FD_DIR / str(fd) if _FD_DIR.is_dir() else tmp
        _still_ours(tmp, fd, what=what)
        if not private:
            os.fchmod(fd, 0o666 & ~_umask())
        os.replace(tmp, path)  # replaces a link at ``path`` itself, never its target
    finally:
        try:
            _remove_if_ours(tmp, fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _still_ours(tmp: Path, fd: int, *, what: str) -> None:
    mine = os.fstat(fd)
    try:
        now = os.lstat(tmp)
    except FileNotFoundError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
        raise InputError(
            f"{what}: the temporary file {str(tmp)!r} was replaced or removed while it was "
            "written; the output was not put in place. Write to a folder only you can write to."
        )


def _remove_if_ours(tmp: Path, fd: int) -> None:
    """Remove the temporary name when it is still the file we created (after a failure);
    something else put there since is left alone."""
    try:
        now = os.lstat(tmp)
    except FileNotFoundError:
        return
    mine = os.fstat(fd)
    if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
        tmp.unlink(missing_ok=True)
