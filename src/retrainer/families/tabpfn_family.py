"""TabPFN: a pretrained transformer that predicts from the training rows in its context, with
no gradient training. Needs ``pip install 'retrainer[tabpfn]'`` and local weights.

Weights are never downloaded. They come from ``params["weights_path"]``, else the
``RETRAINER_TABPFN_WEIGHTS`` environment variable, else ``~/.cache/retrainer/tabpfn/``: a
checkpoint file (``.ckpt`` or ``.safetensors``) or a folder holding some. In a folder the
first file (by name) whose name holds ``classifier`` (``regressor`` for regression) wins,
then a file naming neither task (a multitask checkpoint such as ``tabpfn-v3.5-*.safetensors``).
Without weights ``fit`` raises ``FamilyUnavailableError`` saying where to put them, and the
lifecycle trains the fallback family. Importing this module never imports ``tabpfn``; the
first fit does, after setting ``HF_HUB_OFFLINE=1``, ``HF_HUB_DISABLE_TELEMETRY=1`` and
``TABPFN_NO_BROWSER=1``.

Categorical columns are passed as level codes in ``categorical_features_indices``; missing
values and unseen levels are NaN, which TabPFN handles natively. A fine-tune appends the new
rows to the context (keeping the latest ``max_context_rows``) and refits; the learning-rate
factor and rounds do not apply.

The payload (behind the registry's hash check) is a deterministic zip of the context (the
training matrix and target codes as ``.npy``, no pickle) and ``tabpfn.json``: the weights
file's name, size and SHA-256, the tabpfn version. It holds training rows, not weights; a
load refits on the stored context (deterministic for the seed) and refuses weights whose
hash differs from the ones the model was fitted with.

>>> import pandas as pd
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> m = TabPFNModel("classification", ["x"], params={"weights_path": "/nonexistent"})
>>> try:
...     m.fit(X, [0, 1, 0, 1])
... except FamilyUnavailableError as err:
...     print(err.code, "/nonexistent" in err.message)
family_unavailable True
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import FamilyUnavailableError, IntegrityError, TrainingError
from ..core.family_params import ACCEPTED
from .base import Capabilities, FamilyModel, read_zip, write_zip

ENV_WEIGHTS = "RETRAINER_TABPFN_WEIGHTS"
DEFAULT_WEIGHTS_DIR = "~/.cache/retrainer/tabpfn"
WEIGHT_SUFFIXES = (".ckpt", ".safetensors")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TABPFN_NO_BROWSER": "1"}
_TASK_WORD = {"classification": "classifier", "regression": "regressor"}
_HASHES: dict[tuple[str, int, int], str] = {}


def weights_location(params: dict[str, Any] | None = None) -> Path:
    """Where weights are looked for: the param, else the environment, else the default."""
    raw = (params or {}).get("weights_path") or os.environ.get(ENV_WEIGHTS) or DEFAULT_WEIGHTS_DIR
    return Path(str(raw)).expanduser()


def find_weights(location: Path, task: str) -> Path | None:
    """The checkpoint to use for ``task`` at ``location`` (a file or a folder), if any."""
    if location.is_file():
        return location
    if not location.is_dir():
        return None
    files = sorted(p for p in location.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    word = _TASK_WORD[task]
    other = next(w for t, w in _TASK_WORD.items() if t != task)
    ranked = [p for p in files if word in p.name]
    ranked += [p for p in files if word not in p.name and other not in p.name]
    return ranked[0] if ranked else None


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _import_tabpfn() -> Any:
    os.environ.update(OFFLINE_ENV)
    # CPU is this adapter's default device; TabPFN's advice to use a GPU is noise here.
    warnings.filterwarnings("ignore", message="Running on CPU", category=UserWarning)
    try:
        import tabpfn
    except ImportError as exc:
        raise FamilyUnavailableError(
            f"The 'tabpfn' family cannot be imported ({exc}). Install it with "
            "`pip install 'retrainer[tabpfn]'`, or choose another family.",
            family="tabpfn",
        ) from None
    return tabpfn


class TabPFNModel(FamilyModel):
    name = "tabpfn"
    capabilities = Capabilities(warm_start=True, native_categorical=True, sample_weight=False)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 8,
        "max_context_rows": 1000,
        "ignore_pretraining_limits": False,
        "device": "cpu",
    }
    accepted_params = ACCEPTED["tabpfn"]
    payload_name = "context.zip"

    # ---- weights ----------------------------------------------------------------------
    def _weights_file(self) -> Path:
        location = weights_location(self.params)
        found = find_weights(location, self.task)
        if found is None:
            word = _TASK_WORD[self.task]
            raise FamilyUnavailableError(
                f"No TabPFN weights for {self.task} at '{location}'. Copy a checkpoint there "
                f"(a '*{word}*.ckpt' file or a multitask 'tabpfn-v3.5-*.safetensors', fetched "
                "from huggingface.co/Prior-Labs on a machine with network access), or point "
                f"params.weights_path or ${ENV_WEIGHTS} at one. Until then the fallback family "
                "is trained.",
                family=self.name,
                weights_path=str(location),
            )
        return found

    def _build(self, weights: Path) -> None:
        tabpfn = _import_tabpfn()
        p = self.effective_params
        klass = tabpfn.TabPFNClassifier if self.task == "classification" else tabpfn.TabPFNRegressor
        estimator = klass(
            model_path=str(weights.resolve()),
            n_estimators=int(p["n_estimators"]),
            categorical_features_indices=self.schema_.categorical_indices or None,
            device=p["device"],
            ignore_pretraining_limits=bool(p["ignore_pretraining_limits"]),
            random_state=self.seed,
            n_preprocessing_jobs=1,
        )
        X, y = self.context_
        try:
            estimator.fit(X, y)
        except ValueError as exc:
            raise TrainingError(
                f"TabPFN refused the training data ({exc}). Lower max_context_rows, set "
                "ignore_pretraining_limits: true, or choose another family."
            ) from None
        self.estimator_ = estimator

    # ---- family hooks -----------------------------------------------------------------
    def _set_context(self, X: np.ndarray, y: np.ndarray) -> None:
        keep = int(self.effective_params["max_context_rows"])
        self.context_ = (X[-keep:].copy(), y[-keep:].copy())

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        weights = self._weights_file()
        self.weights_: dict[str, Any] = {
            "file": weights.name,
            "size": weights.stat().st_size,
            "sha256": _sha256(weights),
        }
        self._set_context(X, y)
        self._build(weights)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        old_X, old_y = self.context_
        self._set_context(np.vstack([old_X, X]), np.concatenate([old_y, y]))
        self._build(self._verified_weights())

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(self.estimator_.predict(X), dtype=np.float64)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        out = np.zeros((len(X), self.n_classes))
        out[:, np.asarray(self.estimator_.classes_, dtype=np.int64)] = proba
        return out

    def _dump(self) -> bytes:
        X, y = self.context_
        info = {"weights": self.weights_, "tabpfn_version": _import_tabpfn().__version__}
        return write_zip(
            [
                ("X.npy", _npy(X)),
                ("y.npy", _npy(y)),
                ("tabpfn.json", json.dumps(info, sort_keys=True).encode()),
            ]
        )

    def _load(self, payload: bytes) -> None:
        entries = read_zip(payload, "TabPFN payload")
        try:
            info = json.loads(entries["tabpfn.json"])
            self.context_ = (_from_npy(entries["X.npy"]), _from_npy(entries["y.npy"]))
        except (KeyError, ValueError) as exc:
            raise IntegrityError(f"The TabPFN payload is incomplete ({exc}).") from None
        self.weights_ = dict(info["weights"])
        self._build(self._verified_weights())

    def _verified_weights(self) -> Path:
        weights = self._weights_file()
        if _sha256(weights) != self.weights_["sha256"]:
            raise FamilyUnavailableError(
                f"This TabPFN model was fitted with weights '{self.weights_['file']}' "
                f"(sha256 {self.weights_['sha256'][:12]}…), but '{weights}' differs. Put the "
                "original checkpoint back, or retrain on the new weights.",
                family=self.name,
            )
        return weights


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _from_npy(data: bytes) -> np.ndarray:
    out: np.ndarray = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    return out


def write_random_weights(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write tiny TabPFN-v2 checkpoints with random weights (one per task) into ``folder``.

    For tests and offline smoke checks of the adapter only: predictions are meaningless.
    """
    _import_tabpfn()
    import torch
    from tabpfn.architectures import tabpfn_v2
    from tabpfn.architectures.shared.bar_distribution import FullSupportBarDistribution
    from tabpfn.checkpoint import save_as_safetensors

    folder = Path(folder)
    out: dict[str, Path] = {}
    tasks: tuple[tuple[str, dict[str, int]], ...] = (
        ("classification", {"max_num_classes": 10}),
        ("regression", {"max_num_classes": 0, "num_buckets": 64}),
    )
    for task, heads in tasks:
        torch.manual_seed(seed)
        config = tabpfn_v2.TabPFNV2Config(emsize=16, nlayers=1, nhead=2, **heads)
        net = tabpfn_v2.get_architecture(config)
        with torch.no_grad():
            for param in net.parameters():
                param.normal_(0.0, 0.3)
        state = dict(net.state_dict())
        if task == "regression":
            bars = FullSupportBarDistribution(torch.linspace(-4.0, 4.0, 65))
            state.update({f"criterion.{k}": v for k, v in bars.state_dict().items()})
        path = folder / f"tabpfn-v2-{_TASK_WORD[task]}-random.safetensors"
        save_as_safetensors(
            {
                "state_dict": state,
                "config": dataclasses.asdict(config),
                "architecture_name": "tabpfn_v2",
            },
            path,
        )
        out[task] = path
    return out
