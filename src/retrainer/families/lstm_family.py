"""LSTM: a recurrent network over each entity's recent rows, in PyTorch on CPU. Needs
``pip install 'retrainer[mlp]'`` (the same extra as ``mlp``).

Each row is scored from a window: the ``lookback`` previous rows of its entity, then the row
itself. The entity is the categorical feature named by ``params.entity`` (e.g. a station or a
customer); without one, all rows are one sequence (a single series such as the bundled
weather data). Rows are taken in the order given, which is time order: the lifecycle's
training frames are sorted by the time column, and a prediction's history comes first (see
docs/lstm.md). Windows are built vectorised (:func:`.lstm_config.history_windows`); an
entity with fewer earlier rows is padded, and a 0/1 "present" input marks each step.

Each row is encoded as in ``mlp`` (:class:`.torch_tabular.TabularEncoder`: standardisation,
missing flags, embeddings); the LSTM reads the window, and dense layers score its last state
together with the row's own encoding. Cold start: a row with no earlier rows of its entity is
scored from itself alone (a window of padding). Training teaches that case on purpose:
``history_dropout`` of the training rows (drawn per batch) see no history.

Training, early stopping, fine-tune, threads and the payload (``config.json`` +
``weights.safetensors``, no pickle) work as in ``mlp``; the validation rows' windows reach
back into the training rows before them.

>>> import numpy as np, pandas as pd
>>> x = np.sin(np.arange(300) / 3.0)
>>> X = pd.DataFrame({"x": x})
>>> y = (np.roll(x, 1) > x).astype(int)  # falling: needs the previous row
>>> params = {"epochs": 30, "batch_size": 32, "hidden_size": 8, "lookback": 2,
...           "learning_rate": 0.01}
>>> m = LSTMModel("classification", ["x"], [], params).fit(X.iloc[1:], y[1:])
>>> float((m.predict(X.iloc[1:]) == y[1:]).mean()) > 0.9
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..core.errors import ConfigError
from ..core.family_params import ACCEPTED
from .lstm_config import LSTMConfig, check_lstm_params, group_keys, history_windows
from .torch_tabular import (
    TabularEncoder,
    TorchModel,
    as_tensor,
    loss,
    torch_threads,
    train_epochs,
)

PREDICT_CHUNK = 8_192  # windows per forward pass when scoring (bounds the activations' memory)


class LSTMNet(TabularEncoder, torch.nn.Module):
    """The tabular encoder, an LSTM over the window, dense layers on its last state."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.init_encoder(config.n_numeric, config.cardinalities, config.embedding_dims)
        self.config = config
        d = self.width
        self.lstm = torch.nn.LSTM(
            d + 1,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        h = config.hidden_size
        layers: list[torch.nn.Module] = [torch.nn.Linear(h + d, h), torch.nn.ReLU()]
        if config.dropout > 0:
            layers.append(torch.nn.Dropout(config.dropout))
        layers.append(torch.nn.Linear(h, config.n_out))
        self.body = torch.nn.Sequential(*layers)

    def windows_out(
        self, dense: torch.Tensor, codes: torch.Tensor, idx: torch.Tensor
    ) -> torch.Tensor:
        """The output for each window of ``idx`` (row indices into ``dense``/``codes``,
        ``len(dense)`` for padding; the last column is the scored row)."""
        n = len(dense)
        b, steps = idx.shape
        flat = idx.reshape(-1)
        present = (flat < n).float().unsqueeze(1)
        safe = torch.where(flat < n, flat, 0)
        feats = self.features(dense[safe], codes[safe]) * present
        seq = torch.cat([feats, present], dim=1).reshape(b, steps, -1)
        _, (h, _) = self.lstm(seq)
        current = feats.reshape(b, steps, -1)[:, -1]
        out: torch.Tensor = self.body(torch.cat([h[-1], current], dim=1))
        return out


class LSTMModel(TorchModel):
    name = "lstm"
    default_params: ClassVar[dict[str, Any]] = {
        "lookback": 7,
        "entity": None,
        "hidden_size": 32,
        "num_layers": 1,
        "dropout": 0.1,
        "weight_decay": 1e-4,
        "learning_rate": 1e-3,
        "epochs": 100,
        "batch_size": 256,
        "patience": 10,
        "embedding_dim": None,
        "history_dropout": 0.1,
    }
    accepted_params = ACCEPTED["lstm"]
    payload_name = "lstm.zip"
    sequence: ClassVar[bool] = True  # scores each row from its entity's earlier rows
    net_label = "LSTM"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_lstm_params(self.effective_params)
        entity = self.effective_params["entity"]
        if entity is not None and entity not in self.categorical:
            raise ConfigError(
                f"The 'entity' parameter of the 'lstm' family must name a categorical feature; "
                f"got {entity!r}, and the categorical features are {self.categorical}. Add it "
                "to features.categorical, or set params.entity: null for one sequence.",
                family="lstm",
                param="entity",
            )

    @property
    def lookback(self) -> int:
        return int(self.effective_params["lookback"])

    @property
    def entity(self) -> str | None:
        """The feature whose value is the sequence's entity (None: one sequence)."""
        entity: str | None = self.effective_params["entity"]
        return entity

    # ---- the matrix carries each row's entity as a last column ------------------------
    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        m = super()._matrix(X)
        if self.entity is None:
            keys = np.zeros(len(X))
        else:  # by raw value, so two unseen entities stay apart
            codes, _ = pd.factorize(X[self.entity], use_na_sentinel=True)
            keys = group_keys(np.where(codes < 0, np.nan, codes.astype(np.float64)))
        return np.column_stack([m, keys])

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The feature matrix and the entity keys (a plain schema matrix: from its codes)."""
        width = len(self.schema_.numeric) + len(self.schema_.categorical)
        if X.shape[1] == width + 1:
            return X[:, :width], X[:, width]
        if self.entity is None:
            return X, np.zeros(len(X))
        col = len(self.schema_.numeric) + self.schema_.categorical.index(self.entity)
        return X, group_keys(X[:, col])

    # ---- training ---------------------------------------------------------------------
    def _new_net(self, cardinalities: list[int], embedding: list[int], n_out: int) -> LSTMNet:
        p = self.effective_params
        config = LSTMConfig(
            n_numeric=len(self.schema_.numeric),
            cardinalities=cardinalities,
            embedding_dims=embedding,
            hidden_size=int(p["hidden_size"]),
            num_layers=int(p["num_layers"]),
            dropout=float(p["dropout"]),
            n_out=n_out,
        )
        return LSTMNet(config)

    def _net_from_config(self, config: Mapping[str, Any]) -> LSTMNet:
        return LSTMNet(LSTMConfig.from_dict(config))

    def _scaled_inputs(self, X: np.ndarray) -> np.ndarray:
        return self._split(X)[0]  # not the entity keys

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None,
        epochs: int,
        lr_factor: float,
    ) -> int:
        """Adam over the training rows' windows; the validation rows (newer) are scored with
        windows that reach back into the training rows."""
        p = self.effective_params
        net = self.net_
        n = len(y)
        has_val = val is not None and len(val[1]) > 0
        features, keys = self._split(X if not has_val else np.vstack([X, val[0]]))  # type: ignore[index]
        idx = torch.as_tensor(history_windows(keys, self.lookback))
        with torch.no_grad():
            dense, codes = net.encode(as_tensor(features))
        yt = self._target(y)
        wt = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        optimizer = self._optimizer(lr_factor)
        drop = float(p["history_dropout"])
        pad = len(features)
        generator = torch.Generator().manual_seed(self.seed + 1)

        def step(rows: torch.Tensor) -> torch.Tensor:
            windows = idx[rows]
            if drop > 0:  # these rows see no history: the cold-start case, taught on purpose
                cold = torch.rand(len(rows), generator=generator) < drop
                windows = windows.clone()
                windows[cold, :-1] = pad
            w = None if wt is None else wt[rows]
            return loss(self.task, net.windows_out(dense, codes, windows), yt[rows], w)

        check = None
        if has_val:
            vt = self._target(val[1])  # type: ignore[index]
            v_idx = idx[n:]

            def check() -> float:
                return float(loss(self.task, net.windows_out(dense, codes, v_idx), vt, None))

        return train_epochs(
            net,
            optimizer,
            n,
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
        features, keys = self._split(X)
        if len(X) == 0:
            return np.empty((0, self.n_classes) if self.task == "classification" else 0)
        idx = torch.as_tensor(history_windows(keys, self.lookback))
        parts = []
        with torch_threads(self.predict_threads(len(X))), torch.no_grad():
            dense, codes = net.encode(as_tensor(features))
            for start in range(0, max(len(X), 1), PREDICT_CHUNK):
                out = net.windows_out(dense, codes, idx[start : start + PREDICT_CHUNK])
                parts.append(self._outputs(out))
        return np.concatenate(parts)
