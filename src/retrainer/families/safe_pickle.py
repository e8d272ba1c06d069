"""The restricted unpickler of River artifacts: only names, calls and state a River model needs.

A River model's payload is a pickle, and a pickle is a small program. Loading one here may:

* name a global only from the allow-list: classes and functions River itself defines (not
  one it imported, not a dunder step such as ``__globals__``, nothing from
  ``river.datasets``, ``river.stream`` or ``river.compat``), a few numpy reconstructors,
  safe builtins and collections;
* call (``REDUCE``, ``INST``, ``OBJ``) only a constructor: an allowed class, or one of the
  known reconstructor functions (``copyreg._reconstructor``, numpy's ``_reconstruct``...);
  ``NEWOBJ`` only an allowed class. A River function, a ``math`` function or a
  ``functools.partial`` object is never called while loading;
* apply state (``BUILD``) and add items (``SETITEM(S)``, ``APPEND(S)``, ``ADDITEMS``) only to
  an object the pickle made, never to a class, a function or another global: a pickle made
  only of allowed names cannot patch a River class (e.g. replace
  ``LogisticRegression.predict_one``) for the whole process.

Anything else raises :class:`~retrainer.core.errors.IntegrityError` before the step runs.
It runs on the pure-Python unpickler (the C one has no hook for these opcodes), which is
about ten times slower: a 4.7 MB forest loads in about half a second.

>>> import pickle, random
>>> restricted_loads(pickle.dumps(random.Random(1))).random() == random.Random(1).random()
True
>>> restricted_loads(pickle.dumps(eval))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
retrainer.core.errors.IntegrityError: The river artifact references builtins.eval, ...
"""

from __future__ import annotations

import io
import pickle
import types
from typing import Any, ClassVar

from ..core.errors import IntegrityError

# The allow-list of globals: module -> names (None = any plain public name).
ALLOWED: dict[str, frozenset[str] | None] = {
    "builtins": frozenset(
        {
            "set",
            "frozenset",
            "dict",
            "list",
            "tuple",
            "int",
            "float",
            "complex",
            "bool",
            "str",
            "bytes",
            "bytearray",
            "slice",
            "range",
            "object",
        }
    ),
    "collections": frozenset({"OrderedDict", "defaultdict", "Counter", "deque"}),
    "functools": frozenset({"partial"}),
    "copyreg": frozenset({"_reconstructor", "__newobj__", "__newobj_ex__"}),
    "random": frozenset({"Random"}),
    "_random": frozenset({"Random"}),
    "math": None,
    "typing": frozenset({"Any", "Optional", "Union", "Literal"}),
    "numpy": frozenset({"dtype", "ndarray"}),
    "numpy.dtypes": None,
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "numpy.core.numeric": frozenset({"_frombuffer"}),
    "numpy.random._pickle": frozenset(
        {"__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor"}
    ),
}
# Functions a pickle may call besides allowed classes: (module, name) of reconstructors.
CONSTRUCTORS = frozenset(
    {
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__randomstate_ctor"),
    }
)
# river subpackages that read files or the network when called; never needed by a model.
RIVER_DENIED = ("river.datasets", "river.stream", "river.compat")
# never given state or items: they are shared by the whole process
_NOT_TARGETS = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
)
_NOT_RETRAINER = "It was not made by retrainer; refusing to load it."


_PY: Any = pickle._Unpickler  # its opcode methods are untyped in typeshed


def _refuse(text: str) -> IntegrityError:
    return IntegrityError(f"The river artifact {text}. {_NOT_RETRAINER}")


def _name(obj: Any) -> str:
    if isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
        return f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__} object"


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with checks on globals, calls and state (see the module)."""

    stack: list[Any]  # the pure-Python unpickler's state, untyped in typeshed
    metastack: list[list[Any]]
    dispatch: ClassVar[dict[int, Any]] = dict(_PY.dispatch)

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._globals: dict[int, Any] = {}  # id -> every object find_class handed out
        self._constructors: set[int] = set()  # ids of the allowed reconstructor functions

    def find_class(self, module: str, name: str) -> Any:
        if _allowed(module, name):
            found = super().find_class(module, name)
            if not _is_river(module) or _defined_in_river(found, name):
                self._globals[id(found)] = found
                if (module, name) in CONSTRUCTORS:
                    self._constructors.add(id(found))
                return found
        raise _refuse(
            f"references {module}.{name}, which is outside the unpickling allow-list (river "
            "models, numpy arrays, safe builtins)"
        )

    # ---- checks -------------------------------------------------------------------------
    def _callable(self, func: Any, op: str) -> None:
        """``func`` may be called: an allowed class or a known reconstructor function."""
        is_class = isinstance(func, type) and id(func) in self._globals
        if not (is_class or id(func) in self._constructors):
            raise _refuse(
                f"calls {_name(func)} ({op}), which is not a constructor: a pickle made by "
                "retrainer only builds objects of allowed classes"
            )

    def _target(self, obj: Any, op: str) -> None:
        """``obj`` may take state or items: an object this pickle made, not a global."""
        if isinstance(obj, _NOT_TARGETS) or id(obj) in self._globals:
            raise _refuse(
                f"applies state to {_name(obj)} ({op}): a pickle may set the state of the "
                "objects it creates, never of a class or function (that would change it for "
                "the whole process)"
            )

    # ---- opcodes that call, or change an object ------------------------------------------
    def load_reduce(self) -> None:
        self._callable(self.stack[-2], "REDUCE")
        _PY.load_reduce(self)

    def load_newobj(self) -> None:
        cls = self.stack[-2]
        if not (isinstance(cls, type) and id(cls) in self._globals):
            raise _refuse(f"creates an object of {_name(cls)} (NEWOBJ), which is not a class")
        _PY.load_newobj(self)

    def load_newobj_ex(self) -> None:
        cls = self.stack[-3]
        if not (isinstance(cls, type) and id(cls) in self._globals):
            raise _refuse(f"creates an object of {_name(cls)} (NEWOBJ_EX), which is not a class")
        _PY.load_newobj_ex(self)

    def _instantiate(self, klass: Any, args: list[Any]) -> None:
        self._callable(klass, "INST/OBJ")
        _PY._instantiate(self, klass, args)

    def load_build(self) -> None:
        self._target(self.stack[-2], "BUILD")
        _PY.load_build(self)

    def load_append(self) -> None:
        self._target(self.stack[-2], "APPEND")
        _PY.load_append(self)

    def load_appends(self) -> None:
        self._target(self.metastack[-1][-1], "APPENDS")
        _PY.load_appends(self)

    def load_setitem(self) -> None:
        self._target(self.stack[-3], "SETITEM")
        _PY.load_setitem(self)

    def load_setitems(self) -> None:
        self._target(self.metastack[-1][-1], "SETITEMS")
        _PY.load_setitems(self)

    def load_additems(self) -> None:
        self._target(self.metastack[-1][-1], "ADDITEMS")
        _PY.load_additems(self)

    for _op, _fn in (
        (pickle.REDUCE, load_reduce),
        (pickle.NEWOBJ, load_newobj),
        (pickle.NEWOBJ_EX, load_newobj_ex),
        (pickle.BUILD, load_build),
        (pickle.APPEND, load_append),
        (pickle.APPENDS, load_appends),
        (pickle.SETITEM, load_setitem),
        (pickle.SETITEMS, load_setitems),
        (pickle.ADDITEMS, load_additems),
    ):
        dispatch[_op[0]] = _fn
    del _op, _fn


def _is_river(module: str) -> bool:
    return module == "river" or module.startswith("river.")


def _defined_in_river(obj: Any, name: str) -> bool:
    """True for a class or function river itself defines at ``name``, not one it imported."""
    return _is_river(getattr(obj, "__module__", "") or "") and (
        getattr(obj, "__qualname__", None) == name
    )


def _allowed(module: str, name: str) -> bool:
    if _is_river(module):
        parts = name.split(".")  # a method is a dotted name; dunder steps reach __globals__
        safe = all(p.isidentifier() and not p.startswith("__") for p in parts)
        return safe and not any(module == d or module.startswith(d + ".") for d in RIVER_DENIED)
    if "." in name:
        return False
    if module.startswith("numpy.random._") and name[:1].isupper():
        return True  # bit generators: PCG64, MT19937, ...
    if module not in ALLOWED:
        return False
    names = ALLOWED[module]
    return not name.startswith("_") if names is None else name in names


def restricted_loads(data: bytes) -> Any:
    """Unpickle a river model through :class:`RestrictedUnpickler`; IntegrityError for
    anything outside what a River model needs, or a truncated or foreign payload."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except IntegrityError:
        raise
    except Exception as exc:  # a truncated or foreign payload: report, never half-load
        raise IntegrityError(f"The river artifact cannot be unpickled ({exc}).") from None
