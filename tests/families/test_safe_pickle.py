"""The restricted unpickler of River artifacts, against hand-made pickle programs: a pickle of
allowed names only must not patch a class or function for the process, nor call anything but
a constructor; a real River model still round-trips."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pandas as pd
import pytest
from river import linear_model
from river.utils import math as river_math

from retrainer.core.errors import IntegrityError
from retrainer.families.river_family import RiverModel
from retrainer.families.safe_pickle import restricted_loads

# ---- a tiny assembler for protocol-4 pickles ---------------------------------------------
PROTO, STOP, MARK = b"\x80\x04", b".", b"("
BUILD, REDUCE, NEWOBJ, STACK_GLOBAL = b"b", b"R", b"\x81", b"\x93"
EMPTY_DICT, EMPTY_TUPLE, NONE = b"}", b")", b"N"
SETITEM, SETITEMS, APPENDS, ADDITEMS = b"s", b"u", b"e", b"\x90"
TUPLE1, TUPLE2 = b"\x85", b"\x86"


def text(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    return b"\x8c" + bytes([len(s)]) + s.encode()


def glob(module: str, name: str) -> bytes:
    return text(module) + text(name) + STACK_GLOBAL


def flt(x: float) -> bytes:
    return b"G" + struct.pack(">d", x)


def program(*parts: bytes) -> bytes:
    return PROTO + b"".join(parts) + STOP


LOGREG = glob("river.linear_model.log_reg", "LogisticRegression")
SIGMOID = glob("river.utils.math", "sigmoid")
# state (None, {"predict_one": None}): the slot-state path of BUILD calls setattr(target, ...)
SLOT_PATCH = NONE + EMPTY_DICT + text("predict_one") + NONE + SETITEM + TUPLE2

ATTACKS = {
    # BUILD on a class: setattr(LogisticRegression, "predict_one", None) for the whole process
    "build slot state on a class": (program(LOGREG, SLOT_PATCH, BUILD), "BUILD"),
    "build dict state on a class": (
        program(LOGREG, EMPTY_DICT, text("predict_one") + NONE + SETITEM, BUILD),
        "BUILD",
    ),
    # BUILD on a river function: its defaults would change for every caller
    "build state on a function": (
        program(
            SIGMOID,
            NONE + EMPTY_DICT + text("__defaults__") + flt(1.0) + TUPLE1 + SETITEM + TUPLE2,
            BUILD,
        ),
        "BUILD",
    ),
    "setitems on a class": (
        program(glob("collections", "OrderedDict"), MARK, text("k"), NONE, SETITEMS),
        "SETITEMS",
    ),
    "appends on a class": (
        program(glob("collections", "deque"), MARK, NONE, APPENDS),
        "APPENDS",
    ),
    "additems on a class": (
        program(glob("builtins", "set"), MARK, NONE, ADDITEMS),
        "ADDITEMS",
    ),
    # calls of allowed names that are not constructors
    "reduce a river function": (program(SIGMOID, flt(0.0), TUPLE1, REDUCE), "REDUCE"),
    "reduce a math function": (
        program(glob("math", "factorial"), b"J" + struct.pack("<i", 10), TUPLE1, REDUCE),
        "REDUCE",
    ),
    "reduce a partial object": (
        program(
            glob("functools", "partial"),
            glob("math", "sqrt"),
            TUPLE1,
            REDUCE,  # partial(math.sqrt): a constructor call, allowed
            flt(4.0),
            TUPLE1,
            REDUCE,  # calling the partial object: not a constructor
        ),
        "REDUCE",
    ),
    "newobj of a function": (program(SIGMOID, EMPTY_TUPLE, NEWOBJ), "NEWOBJ"),
    # protocol 0: INST math sqrt with a mark
    "inst of a function": (b"(F4.0\nimath\nsqrt\n.", "INST/OBJ"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_pickle_of_allowed_names_cannot_patch_or_call(name: str) -> None:
    payload, op = ATTACKS[name]
    before = (dict(vars(linear_model.LogisticRegression)), river_math.sigmoid.__defaults__)
    with pytest.raises(IntegrityError, match=rf"\({op}\).*not made by retrainer"):
        restricted_loads(payload)
    after = (dict(vars(linear_model.LogisticRegression)), river_math.sigmoid.__defaults__)
    assert after == before
    assert river_math.sigmoid(0.0) == 0.5


def test_the_attack_programs_are_well_formed() -> None:
    """The same programs do what they claim on the plain unpickler (so the refusals above are
    of the step, not of a malformed stream): the partial is called, the instance is built."""
    assert pickle.loads(ATTACKS["reduce a partial object"][0]) == 2.0
    assert pickle.loads(ATTACKS["reduce a river function"][0]) == 0.5
    obj = pickle.loads(program(LOGREG, EMPTY_TUPLE, NEWOBJ, SLOT_PATCH, BUILD))
    assert isinstance(obj, linear_model.LogisticRegression) and obj.predict_one is None


def test_state_on_an_instance_the_pickle_made_is_allowed() -> None:
    obj = restricted_loads(program(LOGREG, EMPTY_TUPLE, NEWOBJ, SLOT_PATCH, BUILD))
    assert isinstance(obj, linear_model.LogisticRegression) and obj.predict_one is None
    assert linear_model.LogisticRegression.predict_one is not None


@pytest.mark.parametrize(
    ("task", "categorical"),
    [("classification", ["c"]), ("regression", ["c"]), ("regression", [])],
)
def test_real_river_models_round_trip(task: str, categorical: list[str]) -> None:
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(list("abc"), n)}
    )
    y = (X.x + X.y > 0).astype(int) if task == "classification" else X.x * 2 + X.y
    m = RiverModel(task, ["x", "y"], categorical, {"n_models": 3}).fit(X, y)
    back = RiverModel(task, ["x", "y"], categorical, {"n_models": 3})
    back.schema_, back.classes_ = m.schema_, m.classes_
    back._load(m._dump())
    plain = RiverModel(task, ["x", "y"], categorical, {"n_models": 3})
    plain.schema_, plain.classes_ = m.schema_, m.classes_
    plain.model_ = pickle.loads(m._dump())  # the same objects as the plain unpickler's
    assert back._dump() == plain._dump()
    np.testing.assert_array_equal(back.predict(X.head(20)), m.predict(X.head(20)))
