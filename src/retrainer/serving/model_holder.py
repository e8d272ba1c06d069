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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..alerts import Alert, Alerter
from ..core.entities import Roles
from ..core.errors import ModelNotFound
from ..core.routing import Route
from ..lifecycle.predictor import Predictor, load_predictor
from ..plumbing.workspace import Workspace
from .compiled import NATIVE, Backend, choose_backend
from .predict import RowCodec

log = logging.getLogger("retrainer.serving")
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


class ModelRegistry:
    def __init__(self, ws: Workspace, alert: AlertFn | None = None) -> None:
        self.ws = ws
        self.models = sorted(ws.spec.models)
        self.served: dict[str, Served] = {
            m: Served(m, Roles(m, None, None), -1, None, None) for m in self.models
        }
        self.reloads: dict[str, int] = dict.fromkeys(self.models, 0)
        self.failures: dict[str, int] = dict.fromkeys(self.models, 0)
        self.polled: set[str] = set()
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
            raise ModelNotFound(
                f"Model {name!r} is not served here. Served models: "
                f"{', '.join(self.models) or '(none)'}.",
                model=name,
                served=self.models,
            )
        return served

    def ready(self) -> dict[str, str]:
        """Per model: "ready", "no champion", or why it is not ready."""
        out = {}
        for m in self.models:
            s = self.served[m]
            if m not in self.polled:
                out[m] = "not polled yet (store unreachable?)"
            elif self.wanted[m] is not None and s.champion is None:
                out[m] = f"champion {self.wanted[m]} not loaded (failed verification?)"
            else:
                out[m] = "ready" if s.champion is not None else "no champion"
        return out

    # ---- reload -----------------------------------------------------------------------
    def refresh(self, name: str) -> bool:
        """Poll one model; load, verify and swap when its roles changed. True on a swap."""
        with self._lock:
            current = self.served[name]
            revision = self.ws.store.roles_revision(name)  # first: a later change is re-read
            if revision == current.revision and name in self.polled:
                return False
            roles = self.ws.store.roles(name)
            self.polled.add(name)
            self.wanted[name] = roles.champion
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
        )
        classes: tuple[Any, ...] = ()
        if predictor.task == "classification":
            classes = tuple(_plain(c) for c in fam.classes_)
        loaded = Loaded(predictor, codec, classes, tuple(str(c) for c in classes), backend)
        self._cache[key] = loaded
        return loaded

    def refresh_all(self) -> None:
        for m in self.models:
            try:
                self.refresh(m)
            except Exception as exc:  # store down: keep serving what is loaded
                log.warning("model %s: reload poll failed: %s", m, getattr(exc, "message", exc))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="model-reload", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        every = {m: self.ws.model_spec(m).serving.reload_seconds for m in self.models}
        due = {m: time.monotonic() + s for m, s in every.items()}
        tick = min(every.values(), default=5.0)
        while not self._stop.wait(min(tick, 1.0)):
            now = time.monotonic()
            for m in self.models:
                if now >= due[m]:
                    due[m] = now + every[m]
                    try:
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
