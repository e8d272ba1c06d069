"""scikit-learn estimators through skops (no pickle), byte-identical for identical models.

skops names its array files after Python object ids and stamps the current time, so two dumps
of the same model differ. ``dumps`` renames the files in order of first reference and fixes
the timestamps; ``loads`` only accepts an allow-list of scikit-learn types.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

import skops.io as sio

from ..core.errors import IntegrityError

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def dumps(obj: Any) -> bytes:
    raw = sio.dumps(obj)
    src = zipfile.ZipFile(io.BytesIO(raw))
    schema = json.loads(src.read("schema.json"))
    ids: dict[int, int] = {}
    _collect_ids(schema, ids)
    files = {n: _rename(n, ids) for n in src.namelist() if n != "schema.json"}
    schema = _rewrite(schema, ids, files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        entries = [("schema.json", json.dumps(schema, indent=0, sort_keys=True).encode())]
        entries += sorted((files[n], src.read(n)) for n in files)
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    return out.getvalue()


def _collect_ids(node: Any, ids: dict[int, int]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("__id__"), int) and node["__id__"] not in ids:
            ids[node["__id__"]] = len(ids) + 1
        for key in sorted(node):
            _collect_ids(node[key], ids)
    elif isinstance(node, list):
        for item in node:
            _collect_ids(item, ids)


def _rename(name: str, ids: dict[int, int]) -> str:
    stem, _, ext = name.rpartition(".")
    return f"{ids[int(stem)]}.{ext}" if stem.isdigit() and int(stem) in ids else name


def _rewrite(node: Any, ids: dict[int, int], files: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, ids, files) for k, v in node.items()}
        if isinstance(node.get("__id__"), int):
            out["__id__"] = ids[node["__id__"]]
        return out
    if isinstance(node, list):
        return [_rewrite(v, ids, files) for v in node]
    if isinstance(node, str) and node in files:
        return files[node]
    return node


def outside_allow_list(data: bytes) -> list[str]:
    """The types in a skops file that the built-in allow-list (scikit-learn, numpy, builtins)
    does not cover, sorted: what a model must list as trusted to be loaded."""
    untrusted = sio.get_untrusted_types(data=data)
    return sorted(t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES))


def loads(data: bytes, also_trusted: Sequence[str] = ()) -> Any:
    """The object in a skops file whose types are all on the allow-list or in
    ``also_trusted`` (the exact types a model recorded when it was trained)."""
    untrusted = sio.get_untrusted_types(data=data)
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES) and t not in also_trusted]
    if bad:
        raise IntegrityError(
            f"The scikit-learn artifact holds types outside the allow-list: {bad}. "
            "It was not made by retrainer; refusing to load it."
        )
    return sio.loads(data, trusted=untrusted)
