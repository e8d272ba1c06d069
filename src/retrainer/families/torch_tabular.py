"""What the PyTorch families (``mlp``, ``lstm``) share: the tabular encoder in front of their
layers, the seeded training loop with early stopping, the loss, the thread count, the
safetensors + JSON payload, and :class:`TorchModel`, the family glue around them (fit,
fine-tune, settled epochs, outputs, artifact). Needs ``pip install 'retrainer[mlp]'``
(PyTorch, safetensors), imported on first use: the module itself imports without them (the
core install imports every module), so the encoder is a mixin each network puts before
``torch.nn.Module``.

:class:`TabularEncoder` holds everything a row's encoding needs: the numeric columns'
training mean and standard deviation (a missing value becomes the mean, plus a 0/1 "was
missing" input per column; standardised values are clipped to ±10), one embedding per
categorical column (index 0 for a missing or unseen level), and for regression the target's
mean and scale. Its buffers and embeddings keep their names in every subclass's state dict.

>>> import torch
>>> class Enc(TabularEncoder, torch.nn.Module):
...     def __init__(self) -> None:
...         torch.nn.Module.__init__(self)
...         self.init_encoder(1, [2], [2])
>>> enc = Enc()
>>> dense, codes = enc.encode(as_tensor(np.array([[1.0, 0.0], [np.nan, np.nan]])))
>>> dense.tolist(), codes.tolist()
([[1.0, 0.0], [0.0, 1.0]], [[1], [0]])
"""

from __future__ import annotations

import copy
import json
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..core.errors import IntegrityError
from .base import Capabilities, FamilyModel, read_zip, write_zip
from .mlp_config import embedding_dims

if TYPE_CHECKING:
    import torch

CLIP = 10.0  # standardised numeric values are clipped to ±CLIP (an outlier or infinity)


class TabularEncoder:
    """Standardisation, missing flags and embeddings of the schema's float matrix (numeric
    values, then category codes or NaN): a mixin before ``torch.nn.Module`` whose
    ``__init__`` calls :meth:`init_encoder`; the network adds the layers after it."""

    mean: torch.Tensor
    scale: torch.Tensor
    target_mean: torch.Tensor
    target_scale: torch.Tensor
    embeddings: torch.nn.ModuleList

    def init_encoder(
        self, n_numeric: int, cardinalities: Sequence[int], embedding_dims: Sequence[int]
    ) -> None:
        import torch

        assert isinstance(self, torch.nn.Module)
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.embedding_dims = list(embedding_dims)
        self.register_buffer("mean", torch.zeros(n_numeric))
        self.register_buffer("scale", torch.ones(n_numeric))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_scale", torch.ones(()))
        self.embeddings = torch.nn.ModuleList(
            torch.nn.Embedding(levels + 1, dim)
            for levels, dim in zip(cardinalities, embedding_dims, strict=True)
        )

    @property
    def width(self) -> int:
        """Features per encoded row: each numeric value, its missing flag, the embeddings."""
        return 2 * self.n_numeric + sum(self.embedding_dims)

    def learn_scaling(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        """The numeric columns' mean and standard deviation (and the target's, given ``y``),
        ignoring missing values; a constant or empty column keeps scale 1."""
        import torch

        num = X[:, : self.n_numeric].double()
        seen = ~torch.isnan(num)
        count = seen.sum(0).clamp_min(1)
        mean = torch.where(seen, num, 0.0).sum(0) / count
        var = (torch.where(seen, num - mean, 0.0) ** 2).sum(0) / count
        std = var.sqrt()
        self.mean.copy_(mean.float())
        self.scale.copy_(torch.where(std > 1e-12, std, 1.0).float())
        if y is not None:
            y_std = float(np.std(y))
            self.target_mean.fill_(float(np.mean(y)))
            self.target_scale.fill_(y_std if y_std > 1e-12 else 1.0)

    def scale_target(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.target_mean) / self.target_scale

    def unscale_target(self, out: torch.Tensor) -> torch.Tensor:
        return out * self.target_scale.double() + self.target_mean.double()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The matrix as numeric inputs (standardised values and missing flags) and each
        categorical column's embedding index (0: missing or unseen)."""
        import torch

        n = self.n_numeric
        num = x[:, :n]
        missing = torch.isnan(num)
        z = torch.where(missing, 0.0, (num - self.mean) / self.scale).clamp(-CLIP, CLIP)
        codes = torch.nan_to_num(x[:, n:], nan=-1.0).long() + 1
        top = torch.tensor(self.cardinalities, dtype=torch.int64)
        return torch.cat([z, missing.float()], dim=1), torch.minimum(codes.clamp_min(0), top)

    def features(self, dense: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """One vector per row from ``encode``'s: numeric inputs then each embedding."""
        import torch

        parts = [dense] + [emb(codes[:, k]) for k, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=1)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch computes with ``n`` threads inside the block; the old count comes back after."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def as_tensor(X: np.ndarray) -> torch.Tensor:
    """A float32 tensor of a float matrix (no copy when it already is one)."""
    import torch

    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))


def loss(task: str, out: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy (classification) or squared error on the scaled target, row-weighted."""
    import torch

    if task == "classification":
        each = torch.nn.functional.cross_entropy(out, y, reduction="none")
    else:
        each = (out.squeeze(1) - y) ** 2
    if w is None:
        return each.mean()
    return (each * w).sum() / w.sum().clamp_min(1e-12)


def train_epochs(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    n_rows: int,
    batch_size: int,
    step: Callable[[torch.Tensor], torch.Tensor],
    check: Callable[[], float] | None,
    *,
    epochs: int,
    patience: int,
    seed: int,
) -> int:
    """Up to ``epochs`` epochs of shuffled mini-batches (``step(rows)`` is a batch's loss);
    with ``check`` (the validation loss), keep the best epoch's weights and stop after
    ``patience`` epochs without improvement. Returns the epochs the weights hold."""
    import torch

    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(n_rows, generator=generator)
        for start in range(0, n_rows, batch_size):
            optimizer.zero_grad()
            step(order[start : start + batch_size]).backward()
            optimizer.step()
        if check is None:
            continue
        net.eval()
        with torch.no_grad():
            score = check()
        if best is None or score < best[0]:
            best = (score, epoch, copy.deepcopy(net.state_dict()))
        elif epoch - best[1] >= patience:
            break
    net.eval()
    if best is None:
        return epochs
    net.load_state_dict(best[2])
    return best[1]


def dump_net(net: torch.nn.Module, config: Mapping[str, Any]) -> bytes:
    """A deterministic zip of ``config.json`` (``{"format": 1, "net": config}``) and
    ``weights.safetensors`` (the state dict): no pickle."""
    from safetensors.torch import save as save_tensors

    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    head = {"format": 1, "net": dict(config)}
    return write_zip(
        [
            ("config.json", json.dumps(head, sort_keys=True).encode()),
            ("weights.safetensors", save_tensors(state)),
        ]
    )


def load_net(
    payload: bytes, what: str, build: Callable[[Mapping[str, Any]], torch.nn.Module]
) -> Any:
    """The network ``build(config)`` makes, its weights loaded from a ``dump_net`` payload;
    IntegrityError names ``what`` when the payload does not hold such a network."""
    from safetensors.torch import load as load_tensors

    entries = read_zip(payload, f"{what} payload")
    try:
        net = build(json.loads(entries["config.json"])["net"])
        net.load_state_dict(load_tensors(entries["weights.safetensors"]), strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise IntegrityError(
            f"The {what} payload does not hold a network retrainer can load ({exc})."
        ) from None
    net.eval()
    return net


class TorchModel(FamilyModel):
    """The family side of a PyTorch network (``mlp``, ``lstm``): one thread unless asked
    (threads spin on a busy machine), a seeded fit that builds the network (``_new_net``),
    learns its scaling and trains it, a fine-tune that continues the fitted weights at
    ``learning_rate × learning_rate_factor``, the epochs trained as the settled size, the
    outputs as probabilities or unscaled values, and the payload (``dump_net``). A subclass
    gives ``_new_net``, ``_train``, ``_predict`` and ``_net_from_config``."""

    capabilities = Capabilities(warm_start=True)
    thread_param = "num_threads"
    net_label: ClassVar[str]  # the network's name in a payload error ("MLP", "LSTM")
    net_: Any
    epochs_: int

    @property
    def n_threads(self) -> int:
        """``num_threads`` when set, else ``threads`` (at most the CPUs), else 1."""
        if self.threads is None and self.params.get("num_threads") is None:
            return 1
        return super().n_threads

    @abstractmethod
    def _new_net(self, cardinalities: list[int], embedding: list[int], n_out: int) -> Any:
        """The untrained network for the schema's categorical ``cardinalities``, their
        ``embedding`` sizes and ``n_out`` outputs."""

    @abstractmethod
    def _net_from_config(self, config: Mapping[str, Any]) -> Any:
        """The network a payload's ``config.json`` describes (weights loaded after)."""

    @abstractmethod
    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None,
        epochs: int,
        lr_factor: float,
    ) -> int:
        """Train ``self.net_`` for up to ``epochs`` epochs at ``learning_rate × lr_factor``;
        returns the epochs its weights hold."""

    def _scaled_inputs(self, X: np.ndarray) -> np.ndarray:
        """The columns of ``X`` the encoder's scaling is learnt from (all of them)."""
        return X

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        import torch

        p = self.effective_params
        levels = [len(self.schema_.categories.get(c, ())) for c in self.schema_.categorical]
        n_out = self.n_classes if self.task == "classification" else 1
        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net_ = self._new_net(levels, embedding_dims(levels, p["embedding_dim"]), n_out)
            scaling = as_tensor(self._scaled_inputs(X))
            self.net_.learn_scaling(scaling, y if self.task == "regression" else None)
            self.epochs_ = self._train(X, y, val, weight, int(p["epochs"]), 1.0)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        import torch

        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.epochs_)
            self.epochs_ += self._train(X, y, val, None, rounds, learning_rate_factor)

    def _optimizer(self, lr_factor: float) -> Any:
        """Adam at ``learning_rate × lr_factor`` with the recipe's weight decay, one fused
        update over all parameters (the default only on GPUs)."""
        import torch

        p = self.effective_params
        return torch.optim.Adam(
            self.net_.parameters(),
            lr=float(p["learning_rate"]) * lr_factor,
            weight_decay=float(p["weight_decay"]),
            foreach=True,
        )

    def _target(self, y: np.ndarray) -> torch.Tensor:
        import torch

        if self.task == "classification":
            return torch.as_tensor(y, dtype=torch.int64)
        return self.net_.scale_target(torch.as_tensor(y, dtype=torch.float32))  # type: ignore[no-any-return]

    def _outputs(self, out: torch.Tensor) -> np.ndarray:
        """A batch's network output as class probabilities or unscaled values."""
        import torch

        out = out.double()
        if self.task == "classification":
            return torch.softmax(out, dim=1).numpy()  # type: ignore[no-any-return]
        return self.net_.unscale_target(out.squeeze(1)).numpy()  # type: ignore[no-any-return]

    def settled_params(self) -> dict[str, Any] | None:
        self._check_fitted()
        return {"epochs": max(1, int(self.epochs_))}

    def _meta(self) -> dict[str, Any]:
        return {"epochs": int(self.epochs_)}

    def _restore_meta(self, extra: dict[str, Any]) -> None:
        self.epochs_ = int(extra.get("epochs", 0))

    def _dump(self) -> bytes:
        return dump_net(self.net_, self.net_.config.to_dict())

    def _load(self, payload: bytes) -> None:
        self.net_ = load_net(payload, self.net_label, self._net_from_config)
        if not hasattr(self, "epochs_"):  # a payload adopted without retrainer's meta.json
            self.epochs_ = 0
