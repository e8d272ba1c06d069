"""The in-process model holder: per model, the loaded champion and challenger as one
immutable snapshot (``Served``), replaced by a single dict assignment. A request reads the
snapshot once, so a swap never mixes versions inside a request and never fails one.

A background thread polls ``store.roles_revision(model)`` every ``serving.reload_seconds``.
On a change it loads and verifies (hash/HMAC) the new champion and challenger, then swaps.
A champion that fails verification is not swapped in: the old snapshot keeps serving and a
``reload_failed`` alert is sent (once per version). A challenger that fails is dropped from
the snapshot (its traffic goes to the champion), with the same alert.

With ``serving.backend: onnx`` a loaded tree model is compiled and checked against the
native one before it joins a snapshot (``serving.compiled``); ``Loaded.backend`` says which
backend serves it, and why not the compiled one when that was refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..alerts import Alert, Alerter
from ..core.entities import Roles
from ..core.errors import ModelNotFound
from ..core.fleet import member_prefix, split_member
from ..core.routing import Route
from ..core.spec import ModelSpec
from ..lifecycle.predictor import Predictor, load_predictor
from ..plumbing.workspace import Workspace
from .compiled import NATIVE, Backend, choose_backend
from .predict import RowCodec

log = logging.getLogger("retrainer.serving")
LAZY = "champion loads on first request"  # a fleet member's line in /ready
AlertFn = Callable[[Alert], None]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True)
class Loaded:
    """One verified version, ready to score."""

    predictor: Predictor
    codec: RowCodec
    classes: tuple[Any, ...]  # JSON-safe labels (classifiers), else ()
    class_keys: tuple[str, ...]
    backend: Backend = NATIVE  # what scores it (serving.backend, verified)

    @property
    def version(self) -> str:
        return self.predictor.version.version


@dataclass(frozen=True)
class Served:
    model: str
    roles: Roles
    revision: int
    champion: Loaded | None
    challenger: Loaded | None

    def pick(self, route: Route) -> Loaded | None:
        """The loaded version a route names (None when it is not loaded)."""
        for loaded in (self.champion, self.challenger):
            if loaded is not None and loaded.version == route.version:
                return loaded
        return None


class Ready(Mapping[str, str]):
    """:meth:`ModelRegistry.ready` as a read-only mapping computed on access."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._r = registry

    def __getitem__(self, name: str) -> str:
        if name not in self._r.served and name not in self._r.fleets:
            raise KeyError(name)
        return self._r.ready_of(name)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._r.models, *self._r.fleets])

    def __len__(self) -> int:
        return len(self._r.models) + len(self._r.fleets)


class ModelRegistry:
    def __init__(self, ws: Workspace, alert: AlertFn | None = None) -> None:
        self.ws = ws
        # a fleet is no model: its members, found by each poll, are (see ``refresh_fleet``)
        self.fleets = {n: s for n, s in ws.spec.models.items() if s.is_fleet}
        self.models = sorted(n for n in ws.spec.models if n not in self.fleets)
        self.served: dict[str, Served] = {
            m: Served(m, Roles(m, None, None), -1, None, None) for m in self.models
        }
        self.reloads: dict[str, int] = dict.fromkeys(self.models, 0)
        self.failures: dict[str, int] = dict.fromkeys(self.models, 0)
        self.polled: set[str] = set()
        self.lazy: set[str] = set()  # fleet members whose champion loads on first request
        self.wanted: dict[str, str | None] = dict.fromkeys(self.models)  # the store's champion
        self._alerters: dict[str, Alerter] = {}
        self._alert = alert or self._send_alert
        self._alerted: set[tuple[str, str]] = set()
        self._cache: dict[tuple[str, str], Loaded] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one refresh at a time

    # ---- reads on the hot path --------------------------------------------------------
    def get(self, name: str) -> Served:
        served = self.served.get(name)
        if served is None:
            parts = split_member(name)
            if name in self.fleets or (parts is not None and parts[0] in self.fleets):
                raise ModelNotFound(fleet_text(name, parts, self.fleets), model=name)
            raise ModelNotFound(
                f"Model {name!r} is not served here. Served models: "
                f"{', '.join(self.models) or '(none)'}.",
                model=name,
                served=self.models,
            )
        return served

    def ready(self) -> Ready:
        """Per model: "ready", "no champion", :data:`LAZY` (a fleet member's champion, loaded
        by its first request), or why it is not ready; per fleet: "ready" once its members
        were listed. A view: one model's line costs the same with a thousand others."""
        return Ready(self)

    def ready_of(self, m: str) -> str:
        """One model's (or fleet's) line of :meth:`ready`."""
        if m in self.fleets:
            return "ready" if m in self.polled else "members not listed yet (store unreachable?)"
        s = self.served[m]
        if m not in self.polled:
            return "not polled yet (store unreachable?)"
        if m in self.lazy:
            return LAZY
        if self.wanted[m] is not None and s.champion is None:
            return f"champion {self.wanted[m]} not loaded (failed verification?)"
        return "ready" if s.champion is not None else "no champion"

    def ensure(self, name: str) -> Served:
        """``name``'s snapshot, with its champion (and challenger) loaded first when that was
        deferred to the first request (a fleet member, see :meth:`refresh_fleet`)."""
        if name in self.lazy:
            self.refresh(name)
        return self.get(name)

    def entry(self, name: str) -> ModelSpec:
        """The spec entry model ``name`` is served by: its own, or its fleet's for a member
        (a member's serving settings and columns are its fleet's)."""
        spec = self.ws.spec.models.get(name)
        if spec is None:
            spec = self.fleets[self.fleet_of(name) or name]
        return spec

    def fleet_of(self, name: str) -> str | None:
        """The served fleet ``name`` is a member of, else None."""
        parts = split_member(name)
        return parts[0] if parts is not None and parts[0] in self.fleets else None

    def members(self, fleet: str) -> list[str]:
        """The members of ``fleet`` this server knows (found by the polls), sorted."""
        prefix = member_prefix(fleet)
        return [m for m in self.models if m.startswith(prefix)]

    # ---- reload -----------------------------------------------------------------------
    def refresh(
        self, name: str, known: tuple[int, Roles] | None = None, *, defer: bool = False
    ) -> bool:
        """Poll one model; load, verify and swap when its roles changed. True on a swap.
        ``known``: its roles revision and roles, read by the caller (a fleet's poll);
        ``defer``: a model with nothing loaded yet stays so, its champion loaded by its first
        request (:meth:`ensure`)."""
        with self._lock:
            current = self.served[name]
            # the revision first: a change after it is re-read by the next poll
            revision = known[0] if known else self.ws.store.roles_revision(name)
            if revision == current.revision and name in self.polled and name not in self.lazy:
                return False
            roles = known[1] if known else self.ws.store.roles(name)
            self.polled.add(name)
            self.wanted[name] = roles.champion
            failed = (name, roles.champion) in self._alerted  # retried every poll, as a model
            if defer and current.champion is None and not failed:
                self.served[name] = Served(name, roles, revision, None, None)
                (self.lazy.add if roles.champion else self.lazy.discard)(name)
                return False
            self.lazy.discard(name)
            champion = self._load(name, roles.champion, "champion") if roles.champion else None
            if roles.champion is not None and champion is None:
                # keep the old snapshot; the roles it shows stay the ones it serves
                self.served[name] = Served(
                    name, current.roles, -2, current.champion, current.challenger
                )
                return False
            ch = roles.challenger
            challenger = self._load(name, ch.version, "challenger") if ch else None
            self.served[name] = Served(name, roles, revision, champion, challenger)
            keep = {v for v in (roles.champion, ch.version if ch else None) if v}
            if current.champion is not None:
                keep.add(current.champion.version)  # a quick way back on rollback
            for key in [k for k in self._cache if k[0] == name and k[1] not in keep]:
                del self._cache[key]
            if current.revision >= 0 or champion is not None:
                self.reloads[name] += 1
            log.info("model %s: serving %s (revision %d)", name, roles.champion, revision)
            return True

    def _load(self, model: str, version: str, role: str) -> Loaded | None:
        key = (model, version)
        if key in self._cache:
            return self._cache[key]
        try:
            predictor = load_predictor(self.ws, self.ws.store.get_version(model, version))
        except Exception as exc:
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            if key in self._alerted:  # retried every poll; reported once per version
                log.debug("model %s: %s %s still fails to load: %s", model, role, version, reason)
            else:
                self.failures[model] += 1
                log.error("model %s: %s %s failed to load: %s", model, role, version, reason)
                self._alerted.add(key)
                self._alert(
                    Alert(
                        "reload_failed",
                        model,
                        f"{model} {version} not loaded",
                        f"The {role} {version} failed verification or loading; the server keeps "
                        f"serving what it served before. {reason}",
                        {"version": version, "role": role},
                    )
                )
            return None
        spec = self.ws.model_spec(model)
        predictor, backend = choose_backend(predictor, spec.serving)
        fam = predictor.model
        codec = RowCodec(
            fam.schema_,
            handles_missing=fam.capabilities.handles_missing,
            extra=spec.serving.extra,
            unknown_category=spec.serving.unknown_category,
            id_column=spec.id_column,
            time_column=spec.time_column,
            member_column=spec.fleet.by if spec.fleet is not None else None,
        )
        classes: tuple[Any, ...] = ()
        if predictor.task == "classification":
            classes = tuple(_plain(c) for c in fam.classes_)
        loaded = Loaded(predictor, codec, classes, tuple(str(c) for c in classes), backend)
        self._cache[key] = loaded
        return loaded

    def refresh_fleet(self, fleet: str) -> int:
        """Poll every member of ``fleet`` in one query (``store.member_roles``): take in the
        members that appeared since the last poll (a member is made by its first rows), then
        swap each member whose roles changed. A member loads its champion on its first
        request (:meth:`ensure`; loading a thousand at start would take minutes) and, once
        loaded, is reloaded here like any model. Returns the swaps."""
        found = self.ws.store.member_roles(member_prefix(fleet))
        self._add_members([m for m in found if m not in self.served])
        self.polled.add(fleet)
        swapped = 0
        for m, known in found.items():
            if known[0] != self.served[m].revision or m not in self.polled:
                try:
                    swapped += self.refresh(m, known, defer=True)
                except Exception as exc:  # the next poll retries it; the others go on
                    log.warning("model %s: reload failed: %s", m, getattr(exc, "message", exc))
        return swapped

    def _add_members(self, names: list[str]) -> None:
        """Serve new members: every per-model table gets them before ``models`` lists them
        (each is replaced whole, so a reader iterating the old one is not disturbed)."""
        if not names:
            return
        with self._lock:  # no refresh writes into a table while it is copied
            self.wanted = {**self.wanted, **dict.fromkeys(names)}
            self.reloads = {**self.reloads, **dict.fromkeys(names, 0)}
            self.failures = {**self.failures, **dict.fromkeys(names, 0)}
            blank = {m: Served(m, Roles(m, None, None), -1, None, None) for m in names}
            self.served = {**self.served, **blank}
            self.models = sorted([*self.models, *names])
        log.info("serving %d new fleet member(s), e.g. %s", len(names), names[0])

    def refresh_all(self) -> None:
        for m in self.models:
            if self.fleet_of(m) is not None:
                continue  # a fleet's members: polled with their fleet, below
            try:
                self.refresh(m)
            except Exception as exc:  # store down: keep serving what is loaded
                log.warning("model %s: reload poll failed: %s", m, getattr(exc, "message", exc))
        for f in self.fleets:
            try:
                self.refresh_fleet(f)
            except Exception as exc:  # store down: the next poll lists the members
                log.warning("fleet %s: reload poll failed: %s", f, getattr(exc, "message", exc))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="model-reload", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        every = {m: self.ws.model_spec(m).serving.reload_seconds for m in self.ws.spec.models}
        due = {m: time.monotonic() + s for m, s in every.items()}
        tick = min(every.values(), default=5.0)
        while not self._stop.wait(min(tick, 1.0)):
            now = time.monotonic()
            for m in every:  # the spec's entries: a model, or a fleet polled as one
                if now >= due[m]:
                    due[m] = now + every[m]
                    try:
                        if m in self.fleets:
                            self.refresh_fleet(m)
                        else:
                            self.refresh(m)
                    except Exception as exc:
                        log.warning(
                            "model %s: reload poll failed: %s", m, getattr(exc, "message", exc)
                        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for a in self._alerters.values():
            a.close()

    def _send_alert(self, alert: Alert) -> None:
        alerter = self._alerters.get(alert.model)
        if alerter is None:
            alerter = Alerter(self.ws.model_spec(alert.model).alerts)
            self._alerters[alert.model] = alerter
        alerter.send(alert)


def fleet_text(name: str, parts: tuple[str, str] | None, fleets: dict[str, Any]) -> str:
    """Why ``name`` (a fleet, or a member this server does not serve) is no model here."""
    if parts is None:
        by = fleets[name].fleet.by
        return (
            f"Model {name!r} is a fleet (one model per value of {by!r}): predict and feedback "
            f"take its rows at /v1/models/{name}/..., each routed by {by!r}; every other route "
            f"works on one member, /v1/models/{name}.<key>/... (GET /v1/models lists them)."
        )
    fleet, key = parts
    return (
        f"Model {name!r} is not served here: fleet {fleet!r} has no member {key!r} yet. A "
        f"member appears with its first rows (`retrainer ingest {fleet} FILE`, rows whose "
        f"{fleets[fleet].fleet.by!r} names it) and serves once trained (`retrainer train "
        f"{name} --deploy`); this server picks it up within serving.reload_seconds."
    )
