"""Optional libraries: which extra installs each, and the error when one is missing.

The core install (``pip install retrainer``) trains randomforest models and runs every
command. Everything else is an extra, imported only where it is used: model families
(``families.family_class`` turns a missing one into ``FamilyUnavailableError`` and training
falls back), the river concept-drift detector (the check is skipped and says so), the
PostgreSQL driver and fsspec's remote filesystems (a ``ConfigError`` naming the extra).

>>> install_hint("psycopg")
"pip install 'retrainer[postgres]'"
>>> err = missing_library("Store URL 'postgresql://db/x'", ModuleNotFoundError(name="psycopg"))
>>> print(err.message)
Store URL 'postgresql://db/x' needs the Python library 'psycopg', which is not installed. Install it with `pip install 'retrainer[postgres]'`.
"""  # noqa: E501

from __future__ import annotations

from .errors import ConfigError

# top-level module -> the extra that installs it (pyproject.toml [project.optional-dependencies])
EXTRAS: dict[str, str] = {
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "catboost": "catboost",
    "optuna": "search",
    "river": "river",
    "psycopg": "postgres",
    "s3fs": "s3",
    "dask": "dask",
    "distributed": "dask",
    "tabpfn": "tabpfn",
    "onnxruntime": "compiled",
    "onnx": "compiled",
    "onnxmltools": "compiled",
    "skl2onnx": "compiled",
    "torch": "mlp",
    "safetensors": "mlp",
}


def install_hint(module: str) -> str:
    """The command that installs ``module``'s extra (a plain ``pip install`` for others)."""
    extra = EXTRAS.get(module.split(".")[0])
    return f"pip install 'retrainer[{extra}]'" if extra else f"pip install {module}"


def missing_library(thing: str, exc: ImportError) -> ConfigError:
    """A ConfigError saying that ``thing`` (what the user configured, named with its value)
    needs a library that is not installed, and the command that installs it."""
    if exc.name:
        return ConfigError(
            f"{thing} needs the Python library {exc.name!r}, which is not installed. "
            f"Install it with `{install_hint(exc.name)}`.",
            module=exc.name,
        )
    # fsspec raises ImportError("Install s3fs to access S3") without a module name
    named = next((m for m in EXTRAS if m in str(exc)), None)
    fix = f"`{install_hint(named)}`" if named else "the package the message names"
    return ConfigError(
        f"{thing} needs a library that is not installed ({exc}). Install it with {fix}.",
        module=named,
    )
