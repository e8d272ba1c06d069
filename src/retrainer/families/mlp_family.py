"""MLP: a dense neural network in PyTorch on CPU. Needs ``pip install 'retrainer[mlp]'``.

The network holds everything a prediction needs (its encoder is shared with ``lstm``, in
:mod:`.torch_tabular`): the numeric columns'
training mean and standard deviation (a missing value becomes the mean, plus a 0/1 "was
missing" input per column; standardised values are clipped to ±10), one embedding per
categorical column (index 0 for a missing or unseen level), the dense layers
(``hidden_sizes``, ReLU, ``dropout``), and for regression the target's mean and scale. Adam
trains it with L2 regularisation (``weight_decay``) in shuffled mini-batches of
``batch_size``; with a validation set (the lifecycle passes the newest 10% of the training
rows) each epoch is scored on it, training stops after ``patience`` epochs without a better
validation loss, and the best epoch's weights are kept. ``settled_params`` gives that epoch
count, so the refit on every row runs as many epochs with no rows held out.

Fine-tune continues from the fitted weights at ``learning_rate × learning_rate_factor`` for at
most ``rounds`` epochs (early stopping on the fine-tune's validation slice); the
standardisation and the category levels stay the champion's.

Training is seeded and deterministic on CPU for a given thread count: weights, dropout and the
shuffling draw from the seed inside ``torch.random.fork_rng`` (the process's own random state is
left alone) and PyTorch computes with ``n_threads`` threads, restored afterwards. Unlike the
other families the count defaults to one, not every CPU: ``num_threads``, else
``training.threads`` (at most the CPUs available), else 1. A mini-batch of a small network is
too little work to share, and PyTorch's OpenMP threads spin while they wait: on this project's
2-CPU machine under load, 40 epochs on 1,100 weather rows took 0.5 CPU seconds with one thread
and 12 with two.

The payload (behind the registry's hash check) is a deterministic zip of ``config.json`` (the
network's shape) and ``weights.safetensors`` (the state dict); no pickle is written or read.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.linspace(-1, 1, 200), "c": ["a", "b"] * 100})
>>> y = (X["x"] > 0).astype(int)
>>> params = {"epochs": 20, "batch_size": 20, "hidden_sizes": [8], "learning_rate": 0.01}
>>> m = MLPModel("classification", ["x"], ["c"], params).fit(X, y)
>>> m.predict(pd.DataFrame({"x": [-0.9, 0.9], "c": ["a", "a"]})).tolist()
[0, 1]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..core.family_params import ACCEPTED
from .base import Capabilities, FamilyModel
from .mlp_config import NetConfig, check_mlp_params, embedding_dims
from .torch_tabular import (
    TabularEncoder,
    as_tensor,
    dump_net,
    load_net,
    loss,
    torch_threads,
    train_epochs,
)

PREDICT_CHUNK = 65_536  # rows per forward pass when scoring (bounds the activations' memory)


class MLPNet(TabularEncoder, torch.nn.Module):
    """The tabular encoder (:mod:`.torch_tabular`) in front of the dense layers."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.init_encoder(config.n_numeric, config.cardinalities, config.embedding_dims)
        self.config = config
        layers: list[torch.nn.Module] = []
        width = config.n_inputs
        for size in config.hidden_sizes:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
            if config.dropout > 0:
                layers.append(torch.nn.Dropout(config.dropout))
            width = size
        layers.append(torch.nn.Linear(width, config.n_out))
        self.body = torch.nn.Sequential(*layers)

    def head(self, dense: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The network's output (logits, or the scaled regression value) from ``encode``'s."""
        out: torch.Tensor = self.body(self.features(dense, codes))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(*self.encode(x))


class MLPModel(FamilyModel):
    name = "mlp"
    capabilities = Capabilities(warm_start=True)
    default_params: ClassVar[dict[str, Any]] = {
        "hidden_sizes": [64, 32],
        "dropout": 0.1,
        "weight_decay": 1e-4,
        "learning_rate": 1e-3,
        "epochs": 100,
        "batch_size": 256,
        "patience": 10,
        "embedding_dim": None,
    }
    accepted_params = ACCEPTED["mlp"]
    payload_name = "mlp.zip"
    thread_param = "num_threads"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_mlp_params(self.effective_params)

    @property
    def n_threads(self) -> int:
        """``num_threads`` when set, else ``threads`` (at most the CPUs), else 1 (see module).

        >>> MLPModel("regression", ["x"]).n_threads
        1
        >>> MLPModel("regression", ["x"], params={"num_threads": 3}).n_threads
        3
        """
        if self.threads is None and self.params.get("num_threads") is None:
            return 1
        return super().n_threads

    # ---- training ---------------------------------------------------------------------
    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        p = self.effective_params
        levels = [len(self.schema_.categories.get(c, ())) for c in self.schema_.categorical]
        config = NetConfig(
            n_numeric=len(self.schema_.numeric),
            cardinalities=levels,
            embedding_dims=embedding_dims(levels, p["embedding_dim"]),
            hidden_sizes=[int(h) for h in p["hidden_sizes"]],
            dropout=float(p["dropout"]),
            n_out=self.n_classes if self.task == "classification" else 1,
        )
        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net_ = MLPNet(config)
            self.net_.learn_scaling(as_tensor(X), None if self.task != "regression" else y)
            self.epochs_ = self._train(X, y, val, weight, int(p["epochs"]), 1.0)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.epochs_)
            self.epochs_ += self._train(X, y, val, None, rounds, learning_rate_factor)

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None,
        epochs: int,
        lr_factor: float,
    ) -> int:
        """Up to ``epochs`` epochs of Adam; with ``val``, keep the best epoch's weights and stop
        after ``patience`` epochs without improvement. Returns the epochs the weights hold."""
        p = self.effective_params
        net = self.net_
        optimizer = torch.optim.Adam(
            net.parameters(),
            lr=float(p["learning_rate"]) * lr_factor,
            weight_decay=float(p["weight_decay"]),
            foreach=True,  # one fused update over all parameters (the default only on GPUs)
        )
        with torch.no_grad():  # the inputs' encoding is fixed: computed once, not per batch
            dense, codes = net.encode(as_tensor(X))
            checks = None
            if val is not None and len(val[1]) > 0:
                checks = (*net.encode(as_tensor(val[0])), self._target(val[1]))
        yt = self._target(y)
        wt = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)

        def step(rows: torch.Tensor) -> torch.Tensor:
            w = None if wt is None else wt[rows]
            return loss(self.task, net.head(dense[rows], codes[rows]), yt[rows], w)

        check = None
        if checks is not None:
            c = checks

            def check() -> float:
                return float(loss(self.task, net.head(c[0], c[1]), c[2], None))

        return train_epochs(
            net,
            optimizer,
            len(yt),
            int(p["batch_size"]),
            step,
            check,
            epochs=epochs,
            patience=int(p["patience"]),
            seed=self.seed,
        )

    def _target(self, y: np.ndarray) -> torch.Tensor:
        if self.task == "classification":
            return torch.as_tensor(y, dtype=torch.int64)
        return self.net_.scale_target(torch.as_tensor(y, dtype=torch.float32))

    def settled_params(self) -> dict[str, Any] | None:
        self._check_fitted()
        return {"epochs": max(1, int(self.epochs_))}

    # ---- prediction -------------------------------------------------------------------
    def _predict(self, X: np.ndarray) -> np.ndarray:
        net = self.net_
        parts = []
        with torch_threads(self.predict_threads(len(X))), torch.no_grad():
            for start in range(0, max(len(X), 1), PREDICT_CHUNK):
                out = net(as_tensor(X[start : start + PREDICT_CHUNK])).double()
                if self.task == "classification":
                    parts.append(torch.softmax(out, dim=1).numpy())
                else:
                    parts.append(net.unscale_target(out.squeeze(1)).numpy())
        return np.concatenate(parts)

    # ---- artifact ---------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {"epochs": int(self.epochs_)}

    def _restore_meta(self, extra: dict[str, Any]) -> None:
        self.epochs_ = int(extra.get("epochs", 0))

    def _dump(self) -> bytes:
        return dump_net(self.net_, self.net_.config.to_dict())

    def _load(self, payload: bytes) -> None:
        self.net_ = load_net(payload, "MLP", lambda c: MLPNet(NetConfig.from_dict(c)))
        if not hasattr(self, "epochs_"):  # a payload adopted without retrainer's meta.json
            self.epochs_ = 0
