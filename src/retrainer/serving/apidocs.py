"""The API docs, offline: Swagger UI at ``/docs`` from assets shipped in the package (no CDN),
and an OpenAPI document that shows each served model's request rows.

The assets are swagger-ui-dist's ``swagger-ui-bundle.js``, ``swagger-ui.css`` and favicon
(Apache-2.0; version, source and hashes in ``static/swagger-ui/README.md``), served from
``/docs/assets/``. ReDoc is off: it would need assets of its own.

``/openapi.json`` documents one predict operation per model, ``/v1/models/<model>/predict``
(one per fleet, whose rows carry its ``by`` column; not one per member),
whose body references the component ``<model>Row``: each feature with its JSON type as the
served champion knows it (``FeatureSchema``: a number, an integer, or a boolean that also
takes 1/0; a categorical feature a string with the known categories as its ``enum``, or a
boolean when its levels are True/False), ``null`` allowed where the family scores missing
values. The document is rebuilt when the served versions change (cached per set of served
versions), so a hot reload shows.
With ``auth.protect_reads`` the document stays open but names no feature.

>>> from retrainer.families.schema import FeatureSchema
>>> s = FeatureSchema(("age", "n", "vip"), ("plan",), {"plan": ("basic", "gold")},
...                   {"n": "integer", "vip": "boolean"})
>>> row = row_schema(s, ["age", "n", "vip", "plan"], handles_missing=False, extra="ignore")
>>> [row["properties"][c]["type"] for c in ("age", "n", "plan")]
['number', 'integer', 'string']
>>> row["properties"]["vip"]["type"]
['boolean', 'number']
>>> row["properties"]["plan"]["enum"]
['basic', 'gold']
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

from ..families.schema import FeatureSchema
from .edge import DOCS_ASSETS

if TYPE_CHECKING:
    from .app import ServerState

ASSETS = Path(__file__).parent / "static" / "swagger-ui"
ASSET_PATH = DOCS_ASSETS  # open to all, like /docs (serving.edge)
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
PREDICT = "/v1/models/{name}/predict"
UNKNOWN_NOTE = (
    "A category the served version never saw is scored as a missing value and reported in "
    "the response's `warnings` (with `serving.unknown_category: reject`: a 422 instead)."
)


def install_docs(app: FastAPI, state: ServerState) -> None:
    """``/docs`` and its assets on ``app``; ``app.openapi`` replaced by the per-model one.
    The app must be made with ``docs_url=None, redoc_url=None``."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSET_PATH}swagger-ui-bundle.js",
            swagger_css_url=f"{ASSET_PATH}swagger-ui.css",
            swagger_favicon_url=f"{ASSET_PATH}favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # its default is a remote validator
        )

    @app.get(ASSET_PATH + "{file}", include_in_schema=False)
    def asset(file: str) -> Response:
        media = ASSET_TYPES.get(file)
        if media is None:
            known = ", ".join(ASSET_TYPES)
            raise HTTPException(404, f"No docs asset {file[:60]!r}; the assets are {known}.")
        return FileResponse(
            ASSETS / file, media_type=media, headers={"cache-control": "public, max-age=86400"}
        )

    app.openapi = openapi_builder(app, state)  # type: ignore[method-assign]


def openapi_builder(app: FastAPI, state: ServerState) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's document with one predict operation per model, rebuilt
    when the served versions change."""
    lock = threading.Lock()
    cache: dict[Any, dict[str, Any]] = {}

    def build() -> dict[str, Any]:
        served = state.registry.served
        key = tuple(
            (m, s.champion.version if s.champion else None,
             s.challenger.version if s.challenger else None)
            for m, s in sorted(served.items())
        )  # fmt: skip
        with lock:
            doc = cache.get(key)
            if doc is None:
                if app.openapi_schema is None:
                    app.openapi_schema = FastAPI.openapi(app)  # the routes' document, once
                doc = copy.deepcopy(app.openapi_schema)
                if not state.protect_reads:
                    _per_model(doc, state)
                cache.clear()  # only the current versions' document is kept
                cache[key] = doc
            return doc

    return build


def _per_model(doc: dict[str, Any], state: ServerState) -> None:
    paths: dict[str, Any] = doc.get("paths", {})
    generic = paths.get(PREDICT, {}).get("post")
    if generic is None:
        return
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    predict_paths: dict[str, Any] = {}
    for name, spec in sorted(state.ws.spec.models.items()):
        served = state.registry.served.get(name)
        if spec.is_fleet:  # one operation for the fleet: a member's champion shows the types
            served = next((state.registry.served[m] for m in state.registry.members(name)
                           if state.registry.served[m].champion is not None), None)  # fmt: skip
        loaded = served.champion if served is not None else None
        if loaded is not None:
            fam = loaded.predictor.model
            row = row_schema(
                fam.schema_,
                spec.features.all,
                handles_missing=fam.capabilities.handles_missing,
                extra=spec.serving.extra,
            )
            row["description"] = (
                f"One row for model {name!r}, as its champion {loaded.version} takes it. "
                + UNKNOWN_NOTE
            )
        else:
            plain = FeatureSchema(tuple(spec.features.numeric), tuple(spec.features.categorical))
            row = row_schema(plain, spec.features.all, handles_missing=True, extra="ignore")
            row["description"] = (
                f"One row for model {name!r}. No version is loaded yet: the features are the "
                "spec's, their types unknown."
            )
        for key in ("entity_id", spec.id_column):
            row["properties"].setdefault(
                key,
                {
                    "type": ["string", "integer", "null"],
                    "description": "The row's entity id: routes A/B and canary traffic, and "
                    "joins the prediction to its actual.",
                },
            )
        row["properties"].setdefault(
            spec.time_column, {"description": "The row's time (optional, stored with it)."}
        )
        if spec.is_fleet and spec.fleet is not None:
            row["properties"][spec.fleet.by] = {
                "type": ["string", "integer"],
                "description": f"The entity: routes the row to member `{name}.<key>` of fleet "
                f"{name!r}. The response's `members`, `versions` and `arms` name, per row, "
                "who scored it (and `member`, `version`, `arm` when one member scored all).",
            }
            row["required"] = [spec.fleet.by, *row["required"]]
            row["description"] = row["description"].replace("for model", "for fleet", 1)
        schemas[f"{name}Row"] = row
        ref = {"$ref": f"#/components/schemas/{name}Row"}
        schemas[f"{name}PredictRequest"] = {
            "title": f"{name}PredictRequest",
            "description": f"One row (`row`) or a batch (`rows`, 1 to "
            f"{spec.serving.max_batch_rows}) for model {name!r}.",
            "type": "object",
            "properties": {
                "rows": {
                    "type": "array",
                    "items": ref,
                    "minItems": 1,
                    "maxItems": spec.serving.max_batch_rows,
                },
                "row": ref,
            },
            "oneOf": [{"required": ["rows"]}, {"required": ["row"]}],
            "additionalProperties": False,
            "examples": [{"rows": [row.get("examples", [{}])[0]]}],
        }
        op = copy.deepcopy(generic)
        op["operationId"] = f"predict_{name}"
        op["summary"] = f"Predict with {name}"
        op["parameters"] = []
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{name}PredictRequest"}
                }
            },
        }
        if spec.is_fleet:
            _fleet_response(op, schemas)
        predict_paths[PREDICT.replace("{name}", name)] = {"post": op}
    # the per-model operations take the generic one's place, first as the route is
    doc["paths"] = {**predict_paths, **{p: v for p, v in paths.items() if p != PREDICT}}


def _fleet_response(op: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A fleet operation answers ``FleetPredictResponse`` (per-row members and versions)."""
    from .models import FleetPredictResponse

    doc = FleetPredictResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(doc.pop("$defs", {}))
    schemas["FleetPredictResponse"] = doc
    ok = op.setdefault("responses", {}).setdefault("200", {"description": "Successful Response"})
    ok["content"] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/FleetPredictResponse"}}
    }


def row_schema(
    schema: FeatureSchema, features: Sequence[str], *, handles_missing: bool, extra: str
) -> dict[str, Any]:
    """The JSON schema of one request row: each feature's type as ``schema`` knows it
    (``features``: the spec's order), every feature required."""
    props: dict[str, Any] = {}
    example: dict[str, Any] = {}
    cats = set(schema.categorical)
    for col in features:
        if col in cats:
            levels = list(schema.categories.get(col, ()))
            if schema.boolean_like(col):
                prop: dict[str, Any] = {
                    "type": "boolean",
                    "description": "Categorical, boolean-like: true/false (or the texts "
                    f"{' and '.join(repr(v) for v in levels)}).",
                }
                example[col] = levels[-1] == "True"
            elif levels:
                prop = {
                    "type": "string",
                    "enum": levels,
                    "description": f"Categorical: one of {len(levels)} known categories.",
                }
                example[col] = levels[0]
            else:
                prop = {"type": "string", "description": "Categorical."}
                example[col] = "a"
        else:
            kind = schema.kinds.get(col, "number")
            prop = {"type": ["boolean", "number"] if kind == "boolean" else kind}
            if kind == "boolean":
                prop["description"] = "Numeric, boolean-like: true/false (or 1/0)."
            example[col] = True if kind == "boolean" else 0
        if handles_missing:
            types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
            prop["type"] = [*types, "null"]
            if "enum" in prop:
                prop["enum"] = [*prop["enum"], None]
        props[col] = prop
    out: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "required": list(features),
        "examples": [example],
    }
    if extra == "forbid":
        out["additionalProperties"] = False
    return out
