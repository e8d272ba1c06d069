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

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.family_params import ACCEPTED
from .mlp_config import NetConfig, check_mlp_params
from .torch_tabular import (
    TabularEncoder,
    TorchModel,
    as_tensor,
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


class MLPModel(TorchModel):
    name = "mlp"
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
    net_label = "MLP"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_mlp_params(self.effective_params)

    # ---- training ---------------------------------------------------------------------
    def _new_net(self, cardinalities: list[int], embedding: list[int], n_out: int) -> MLPNet:
        p = self.effective_params
        config = NetConfig(
            n_numeric=len(self.schema_.numeric),
            cardinalities=cardinalities,
            embedding_dims=embedding,
            hidden_sizes=[int(h) for h in p["hidden_sizes"]],
            dropout=float(p["dropout"]),
            n_out=n_out,
        )
        return MLPNet(config)

    def _net_from_config(self, config: Mapping[str, Any]) -> MLPNet:
        return MLPNet(NetConfig.from_dict(config))

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
        optimizer = self._optimizer(lr_factor)
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

    # ---- prediction -------------------------------------------------------------------
    def _predict(self, X: np.ndarray) -> np.ndarray:
        net = self.net_
        parts = []
        with torch_threads(self.predict_threads(len(X))), torch.no_grad():
            for start in range(0, max(len(X), 1), PREDICT_CHUNK):
                parts.append(self._outputs(net(as_tensor(X[start : start + PREDICT_CHUNK]))))
        return np.concatenate(parts)
