"""The one check for every name that reaches a path: model names, versions, file names.

A model name or a version goes into artifact paths, backup members and URLs. Each path it
takes in (the spec, the API, restore, import) calls these checks, so a name like
``../../x`` is refused the same way everywhere, with the place it came from in the message.

>>> check_model_name("churn", where="spec")
'churn'
>>> try:
...     check_model_name("../x", where="backup member versions.jsonl")
... except InputError as err:
...     print(err.message[:60])
backup member versions.jsonl: model name '../x' is not valid
>>> check_version("1.2.0", where="API path")
'1.2.0'
>>> text_problem("a\\x00b", MAX_ID)
'holds a NUL character (U+0000)'
"""

from __future__ import annotations

import re

from .errors import InputError

MAX_NAME = 64  # a model name's width in the store
PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# a fleet member: <fleet>.<key> (see core.fleet), at most MAX_NAME characters in all
MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)?")
VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
NAME_RULE = (
    "Model names start with a letter and hold only letters, digits, '_' or '-' (at most 64); "
    "a fleet member's name is <fleet>.<key>."
)
MAX_ID = 128  # an entity id's width in the store (the predictions table, the row keys)
VERSION_RULE = "Versions are MAJOR.MINOR.PATCH with plain numbers, e.g. 1.2.0."


def is_model_name(name: object) -> bool:
    """Whether ``name`` is a valid model name (no error)."""
    return (
        isinstance(name, str) and len(name) <= MAX_NAME and MODEL_NAME.fullmatch(name) is not None
    )


def check_model_name(name: object, *, where: str) -> str:
    """``name`` if it is a valid model name, else an InputError naming ``where``."""
    if not is_model_name(name):
        raise InputError(f"{where}: model name {name!r} is not valid. {NAME_RULE}")
    return str(name)


def check_version(version: object, *, where: str) -> str:
    """``version`` if it is a plain MAJOR.MINOR.PATCH, else an InputError naming ``where``."""
    if not isinstance(version, str) or VERSION.fullmatch(version) is None:
        raise InputError(f"{where}: version {version!r} is not valid. {VERSION_RULE}")
    return version


def text_problem(value: str, limit: int) -> str | None:
    """Why ``value`` cannot be stored in either store (longer than ``limit``, a NUL, which
    PostgreSQL refuses, a lone surrogate, which UTF-8 cannot encode), or None."""
    if len(value) > limit:
        return f"longer than {limit} characters ({len(value)})"
    if "\x00" in value:
        return "holds a NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds a lone surrogate (U+{ord(value[exc.start]):04X}), which UTF-8 cannot encode"
    return None
