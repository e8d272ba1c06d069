"""Fleets: one spec entry that keeps a model per entity (a product, a store, a ticker).

A model with ``fleet: {by: store}`` is a template. Each value of the ``by`` column names a
member, a model of its own, ``<fleet>.<key>``, with its own versions, gate, rollout, policy
and rows; everything that works on a model works on a member by that name. The key is the
entity's text when it is a plain name, else a readable slug and a hash of the text, so any
entity (``"SKU 12/4"``, a 200-character id) maps to one stable, path-safe name of at most
64 characters (the store's width for a model name). Pure: no I/O.

>>> member_name("sales", "store_7")
'sales.store_7'
>>> member_name("sales", "SKU 12/4")
'sales.SKU-12-4--a9cc6ae388'
>>> split_member("sales.store_7")
('sales', 'store_7')
>>> split_member("sales") is None
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from .errors import InputError
from .names import MAX_NAME
from .spec_sections import Section

SEP = "."
_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
_HASHED = re.compile(r".*--[0-9a-f]{10}")  # what a hashed key ends with: never taken verbatim
_HASH_CHARS = 10

if TYPE_CHECKING:
    from .spec import ModelSpec


class Fleet(Section):
    """``fleet: {by: <column>}``: one model per value of the column (see :mod:`.fleet`)."""

    by: str = Field(
        description=(
            "The column whose value names the member: one model per value (a product, a store, "
            "a ticker). Rows, predictions and feedback carry it; REST routes a row by it."
        )
    )


def member_key(fleet: str, entity: str) -> str:
    """The part of a member's name after ``<fleet>.``: ``entity`` itself when it is a plain
    name that fits, else a slug of it and 10 hex digits of its SHA-256.

    >>> member_key("m", "AAPL"), member_key("m", "a b")
    ('AAPL', 'a-b--c8687a08aa')
    """
    budget = MAX_NAME - len(fleet) - len(SEP)
    if _PLAIN.fullmatch(entity) and len(entity) <= budget and not _HASHED.fullmatch(entity):
        return entity
    digest = hashlib.sha256(entity.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", entity).strip("-")
    slug = slug[: max(budget - _HASH_CHARS - 2, 0)].rstrip("-")
    return f"{slug}--{digest}" if slug else f"h--{digest}"[-budget:]


def member_name(fleet: str, entity: str) -> str:
    """The model name of ``fleet``'s member for ``entity`` (see :func:`member_key`)."""
    return f"{fleet}{SEP}{member_key(fleet, entity)}"


def split_member(name: str) -> tuple[str, str] | None:
    """``(fleet, key)`` of a member's name, or None for a plain model name."""
    fleet, sep, key = name.partition(SEP)
    return (fleet, key) if sep and fleet and key else None


def member_prefix(fleet: str) -> str:
    """What every member name of ``fleet`` starts with.

    >>> member_prefix("sales")
    'sales.'
    """
    return fleet + SEP


def require_by(spec: ModelSpec, columns: Iterable[Any], where: str, role: str, fix: str) -> str:
    """The fleet's ``by`` column, or an InputError naming it, the columns present, what the
    column does here (``role``) and the other way (``fix``) when ``columns`` lack it.

    >>> from retrainer.core.spec import ModelSpec
    >>> m = ModelSpec(name="sales", task="regression", target="y", id_column="i",
    ...     time_column="t", features={"numeric": ["x"]}, fleet={"by": "store"})
    >>> require_by(m, ["store", "x"], "a.csv", "names each row's member", "")
    'store'
    >>> try:
    ...     require_by(m, ["x"], "a.csv", "names each row's member", "Add it.")
    ... except InputError as err:
    ...     print(err.message[:60])
    a.csv: column 'store' (fleet.by of model 'sales': it names e
    """
    assert spec.fleet is not None
    by = spec.fleet.by
    have = [str(c) for c in columns]
    if by not in have:
        present = [c for c in have if not c.startswith("__")]
        raise InputError(
            f"{where}: column {by!r} (fleet.by of model {spec.name!r}: it {role}) is not in the "
            f"data. The data has {present}. {fix}".rstrip(),
            missing=[by],
        )
    return by


def member_names(fleet: str, keys: Any) -> Any:
    """Each entity text of the pandas Series ``keys`` as its member's name (None stays None);
    :func:`member_name` runs once per distinct entity.

    >>> import pandas as pd
    >>> member_names("sales", pd.Series(["s0", None, "s0", "a b"])).tolist()
    ['sales.s0', nan, 'sales.s0', 'sales.a-b--c8687a08aa']
    """
    names = {k: member_name(fleet, str(k)) for k in keys.dropna().unique().tolist()}
    return keys.map(names)


def check_single(spec: ModelSpec, doing: str) -> ModelSpec:
    """``spec`` when it is one model (a plain entry or a member), else an InputError that
    says how to reach the fleet's members instead.

    >>> from retrainer.core.spec import ModelSpec
    >>> m = ModelSpec(name="sales", task="regression", target="y", id_column="i",
    ...     time_column="t", features={"numeric": ["x"]}, fleet={"by": "store"})
    >>> try:
    ...     check_single(m, "train")
    ... except InputError as err:
    ...     print(err.message[:57])
    Model 'sales' is a fleet (one model per value of 'store')
    """
    if spec.fleet is not None and spec.is_fleet:
        raise InputError(
            f"Model {spec.name!r} is a fleet (one model per value of {spec.fleet.by!r}): "
            f"{doing} works on one member, `{spec.name}.<key>` (`retrainer status` lists "
            f"them), or on every member with `retrainer maintain --all`.",
            model=spec.name,
        )
    return spec
