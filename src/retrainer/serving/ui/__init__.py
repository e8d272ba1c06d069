"""The dashboard at ``/ui`` (issue 18): an overview of every model and a page per model,
rendered on the server from the store through the lifecycle functions; charts are the
report's inline SVG; nothing is fetched from outside the server.

Reading needs no token (unless ``auth.protect_reads``, which a browser cannot meet: the
dashboard is then closed). Actions (deploy, rollback, maintain) are the ``/v1`` admin routes,
called by the page's script with the admin token in the Authorization header after a confirm
step (see :mod:`retrainer.serving.ui.script`). When the store is down, pages show the last
known state under a banner.

Routes: ``GET /ui``, ``GET /ui/models/{name}`` (a fleet member's too), ``GET
/ui/fleets/{fleet}`` (its members, ``?sort=&order=&page=&q=``), their JSON for polling under
``/ui/api/``, and ``GET /ui/static/ui.css``; any other ``/ui`` path is the 404 page listing the
models and fleets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from ...core.errors import InputError
from ..errors import json_response
from . import fleet_pages, pages
from .fleet import FleetRow, check_sort
from .fleet_pages import View
from .snapshot import ModelPage, Read, Snapshots, as_page

if TYPE_CHECKING:
    from ..app import ServerState

STATIC = Path(__file__).parent / "static"
ASSETS = {"ui.css": "text/css; charset=utf-8"}
HEADERS = {
    "cache-control": "no-store",
    # the pages load nothing from elsewhere, and the browser holds them to it
    "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
}


def ui_router(state: ServerState) -> APIRouter:
    """The dashboard's routes over ``state`` (its reads are cached in ``state.cache``)."""
    r = APIRouter(prefix="/ui", include_in_schema=False)
    snaps: Snapshots = state.cache.setdefault("ui", Snapshots(state))

    def html(text: str, status: int = 200) -> Response:
        return HTMLResponse(text, status, headers=HEADERS)

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def plain() -> list[str]:
        reg = state.registry
        return [m for m in reg.models if reg.fleet_of(m) is None]

    def missing(request: Request, what: str, status: int = 404) -> Response:
        fleets = sorted(state.registry.fleets)
        heading = "Not found" if status == 404 else "Bad request"
        return html(pages.not_found(base(request), what, plain(), fleets, heading), status)

    def view_of(request: Request) -> View:
        """The fleet page's sort, order, page and filter, from its query string."""
        q = request.query_params
        view = View(q.get("sort", "member"), q.get("order", "asc"), 1, q.get("q", "")[:64])
        check_sort(view.sort, view.order)
        page = q.get("page", "1")
        if not page.isdigit():
            raise InputError(f"The fleet page's page must be a whole number. Got {page!r}.")
        return View(view.sort, view.order, int(page), view.q)

    def model_read(name: str) -> Read:
        read = snaps.page(name)
        return Read(as_page(read.value), read.store_up, read.error, read.at)

    @r.get("")
    def overview(request: Request) -> Response:
        return html(pages.overview(base(request), snaps.overview()))

    @r.get("/api/overview")
    def overview_json(request: Request) -> Response:
        read = snaps.overview()
        return json_response(
            {
                "store_up": read.store_up,
                "error": read.error or None,
                "as_of": pages.stamp(read.at),
                "models": [m.model for m in read.value or [] if not isinstance(m, FleetRow)],
                "fleets": [m.fleet for m in read.value or [] if isinstance(m, FleetRow)],
                "html": pages.overview_rows(base(request), read.value or []),
                "banner": pages.banner(read),
            }
        )

    @r.get("/models/{name}")
    def model(name: str, request: Request) -> Response:
        if name not in state.registry.served:
            return missing(request, f"This server serves no model named {name!r}.")
        page = pages.model_page(
            base(request), name, model_read(name), bool(state.token), state.registry.fleet_of(name)
        )
        return html(page)

    @r.get("/fleets/{fleet}")
    def fleet(fleet: str, request: Request) -> Response:
        if fleet not in state.registry.fleets:
            return missing(request, f"This server serves no fleet named {fleet!r}.")
        try:
            view = view_of(request)
        except InputError as exc:
            return missing(request, exc.message, 400)
        by = state.registry.fleets[fleet].fleet
        text = fleet_pages.fleet_page(
            base(request), fleet, by.by if by else "", snaps.fleet(fleet), view
        )
        return html(text)

    @r.get("/api/fleets/{fleet}")
    def fleet_json(fleet: str, request: Request) -> Response:
        if fleet not in state.registry.fleets:
            return json_response(
                {"error": "fleet_not_found", "fleets": sorted(state.registry.fleets)}, 404
            )
        try:
            view = view_of(request)
        except InputError as exc:
            return json_response({"error": "bad_request", "message": exc.message}, 400)
        read = snaps.fleet(fleet)
        return json_response(
            {
                "store_up": read.store_up,
                "error": read.error or None,
                "as_of": pages.stamp(read.at),
                "members": len(read.value.members) if read.value else None,
                "html": fleet_pages.members_table(base(request), read.value, view)
                if read.value
                else "",
                "banner": pages.banner(read),
            }
        )

    @r.get("/api/models/{name}")
    def model_json(name: str, request: Request) -> Response:
        if name not in state.registry.served:
            return json_response({"error": "model_not_found", "models": plain()}, 404)
        read = model_read(name)
        page: ModelPage | None = read.value
        return json_response(
            {
                "store_up": read.store_up,
                "error": read.error or None,
                "as_of": pages.stamp(read.at),
                "champion": page.row.roles.champion if page else None,
                "html": pages.summary(base(request), page) if page else "",
                "banner": pages.banner(read),
            }
        )

    @r.get("/static/{file}")
    def static(file: str) -> Response:
        if file not in ASSETS:
            return Response("not found", 404, media_type="text/plain")
        return Response(
            (STATIC / file).read_bytes(),
            media_type=ASSETS[file],
            headers={"cache-control": "public, max-age=3600"},
        )

    @r.get("/{rest:path}")
    def anything_else(rest: str, request: Request) -> Response:
        if not rest:  # /ui/
            return overview(request)
        return missing(request, f"No dashboard page at /ui/{rest}.")

    return r


__all__ = ["ui_router"]
