"""Member names: every entity maps to one stable, valid, path-safe model name; the spec
resolves members; a fleet entry is refused where one model is meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrainer.core.errors import ConfigError, InputError, ModelNotFound
from retrainer.core.fleet import check_single, member_key, member_name, split_member
from retrainer.core.names import MAX_NAME, is_model_name
from retrainer.core.spec import parse_spec
from retrainer.plumbing.workspace import Workspace

from .fleet_data import FLEET, fleet_spec


@given(st.text(min_size=1, max_size=300), st.sampled_from(["s", "sales", "a" * 60]))
def test_every_entity_maps_to_a_valid_member_name(entity: str, fleet: str) -> None:
    name = member_name(fleet, entity)
    assert is_model_name(name), name
    assert len(name) <= MAX_NAME
    assert split_member(name) == (fleet, member_key(fleet, entity))
    assert member_name(fleet, entity) == name  # stable


def test_plain_entities_keep_their_text_and_others_are_hashed_apart() -> None:
    assert member_name("sales", "store_7") == "sales.store_7"
    a, b = member_name("sales", "SKU 12/4"), member_name("sales", "SKU 12-4")
    assert a != b and a.startswith("sales.SKU-12-4--")
    # a plain entity that looks like a hashed key is hashed too: no two entities share a name
    looks_hashed = member_key("sales", "SKU 12/4")
    assert member_key("sales", looks_hashed) != looks_hashed


def test_spec_resolves_members_and_refuses_a_dotted_entry() -> None:
    spec = parse_spec(fleet_spec("sqlite://", "memory://x"), environ={})
    member = spec.model("sales.s1")
    assert member.name == "sales.s1" and not member.is_fleet and member.fleet is not None
    assert spec.model(FLEET).is_fleet
    with pytest.raises(ModelNotFound):
        spec.model("other.s1")
    data = fleet_spec("sqlite://", "memory://x")
    data["models"] = {"a.b": data["models"][FLEET]}
    with pytest.raises(ConfigError, match="not a valid model name"):
        parse_spec(data, environ={})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"fleet": {"by": "sales"}}, "fleet.by 'sales' is also the target"),
        ({"fleet": {"by": "x"}}, "fleet.by 'x' is also a feature"),
        ({"fleet": {"by": "day"}}, "is also the time_column"),
        ({"fleet": {}}, "fleet.by"),
        (
            {"data": {"source": "parquet", "path": "x/*.parquet"}},
            "data.source 'parquet' is not supported with fleet",
        ),
    ],
)
def test_a_bad_fleet_section_is_a_spec_error(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_spec(fleet_spec("sqlite://", "memory://x", **override), environ={})


def test_one_model_operations_refuse_the_fleet_entry_and_name_the_way() -> None:
    spec = parse_spec(fleet_spec("sqlite://", "memory://x"), environ={})
    with pytest.raises(InputError, match=r"sales\.<key>.*maintain --all"):
        check_single(spec.model(FLEET), "train")
    assert check_single(spec.model("sales.s1"), "train").name == "sales.s1"


def test_single_model_commands_on_the_fleet_entry_say_how_to_reach_members(
    tmp_path: Path,
) -> None:
    from retrainer.lifecycle.deploy import rollback
    from retrainer.lifecycle.monitor import monitor
    from retrainer.report.data import collect

    spec = parse_spec(fleet_spec(f"sqlite:///{tmp_path}/s.db", str(tmp_path / "a")), environ={})
    with Workspace(spec) as ws:
        for call in (
            lambda: monitor(ws, FLEET),
            lambda: rollback(ws, FLEET),
            lambda: collect(ws, FLEET),
        ):
            with pytest.raises(InputError, match=r"is a fleet .*sales\.<key>"):
                call()


def test_a_workspace_forgets_a_models_cached_versions(tmp_path: Path) -> None:
    spec = parse_spec(fleet_spec(f"sqlite:///{tmp_path}/s.db", str(tmp_path / "a")), environ={})
    with Workspace(spec) as ws:
        ws._cache[("sales.a", "1.0.0")] = object()  # type: ignore[assignment]
        ws._cache[("sales.b", "1.0.0")] = object()  # type: ignore[assignment]
        ws._classes[("classes", "sales.a", "1.0.0")] = [0, 1]
        ws.forget("sales.a")
        assert list(ws._cache) == [("sales.b", "1.0.0")] and not ws._classes
