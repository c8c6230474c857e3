"""Bad inputs: torch 2.13's exception class and message for every misuse, and nothing modified.

Three families:

- differential cases (``BAD``): every bad-input case of ``shared/spec/torch_semantics.md``
  that ``tests/cases.py`` does not already cover, plus non-callable functions, generators as
  inputs, ``None`` outputs, wrong arity, huge ranks and mismatched shapes wherever a shape
  is checked. Each runs on torch (live, or as recorded in ``tests/torch_outcomes.json`` on
  the legs without torch) and on jaxfunc (eager and compiled) through ``oracle.py``;
  on the jaxfunc side every call is *watched*: what the caller passed (arrays, dicts,
  lists, generators) is snapshotted before the call and compared after it, whether the
  call returned or raised.
- jaxfunc-only cases with no torch counterpart (numpy inputs, including dtype=object):
  asserted directly, with the same snapshot check.
- the watcher itself is tested, so a mutation cannot slip through unnoticed.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import Case, mul, x3, y3
from oracle import HAVE_TORCH, JaxSide, assert_same, outcome
from recorded import torch_outcome

import jaxfunc
import jaxfunc.autograd.functional as AF
import jaxfunc.func as TF

# -- snapshots: nothing the caller passed may change ----------------------------------------------

_UNCOPYABLE = object()


class _Frozen:
    """A numpy array's copy and its writeable flag (``deepcopy`` does not keep the flag)."""

    def __init__(self, arr: np.ndarray) -> None:
        self.copy, self.writeable = arr.copy(), arr.flags.writeable


def snapshot(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _Frozen(value)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    try:
        return copy.deepcopy(value)
    except Exception:
        return _UNCOPYABLE


def assert_unchanged(before: Any, after: Any, path: str = "argument") -> None:
    """``after`` (what the caller holds now) equals ``before`` (a deep copy from before the call)."""
    if before is _UNCOPYABLE:
        return
    if isinstance(before, _Frozen):
        assert isinstance(after, np.ndarray), f"{path}: a numpy array was replaced by {type(after)}"
        ref = before.copy
        assert after.dtype == ref.dtype and after.shape == ref.shape, (
            f"{path}: array reshaped/recast"
        )
        if ref.dtype == object:
            assert all(a is b or a == b for a, b in zip(after.ravel(), ref.ravel())), (
                f"{path}: changed"
            )
        else:
            np.testing.assert_array_equal(after, ref, err_msg=f"{path}: array contents changed")
        assert after.flags.writeable == before.writeable, f"{path}: writeable flag changed"
        return
    assert type(after) is type(before), f"{path}: type changed from {type(before)} to {type(after)}"
    if isinstance(before, jax.Array):
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before), err_msg=path)
    elif isinstance(before, dict):
        assert list(after) == list(before), (
            f"{path}: dict keys changed: {list(before)} -> {list(after)}"
        )
        for k in before:
            assert_unchanged(before[k], after[k], f"{path}[{k!r}]")
    elif isinstance(before, (list, tuple)):
        assert len(after) == len(before), (
            f"{path}: length changed from {len(before)} to {len(after)}"
        )
        for i, (b, a) in enumerate(zip(before, after)):
            assert_unchanged(b, a, f"{path}[{i}]")


class Mutated(BaseException):
    """A jaxfunc call changed what the caller passed. A BaseException, so that the harness's
    ``outcome`` (which turns exceptions into comparable results) cannot swallow it."""


class Watched:
    """A jaxfunc module, or a callable it returned, whose every call is checked for mutation.

    Callables that come back (``grad``'s wrapper, ``vjp_fn``, ``jvp_fn``) are watched too.
    """

    def __init__(self, target: Any, name: str, log: list[str]) -> None:
        self._target, self._name, self._log = target, name, log

    def __getattr__(self, attr: str) -> Any:
        return Watched(getattr(self._target, attr), f"{self._name}.{attr}", self._log)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        before = snapshot((args, kwargs))
        self._log.append(self._name)
        try:
            result = self._target(*args, **kwargs)
        finally:
            try:
                assert_unchanged(before, (args, kwargs), f"{self._name} arguments")
            except AssertionError as e:
                raise Mutated(str(e)) from None
        return _watch_result(result, self._name, self._log)


def _watch_result(result: Any, name: str, log: list[str]) -> Any:
    if callable(result) and not isinstance(result, jax.Array):
        return Watched(result, f"{name}(...)", log)
    if type(result) is tuple:
        return tuple(_watch_result(r, name, log) for r in result)
    return result


class WatchedJaxSide(JaxSide):
    """jaxfunc's side of the harness with every transform call watched."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.TF = Watched(TF, "TF", self.calls)
        self.AF = Watched(AF, "AF", self.calls)


# -- shared building blocks -------------------------------------------------------------------------


def two(a: Any, b: Any) -> Any:
    """A two-argument function, named so Python's arity message is the same on both sides."""
    return a * b


def one(a: Any) -> Any:
    return a * 2


def gen(s: Any, n: int = 2) -> Any:
    return (x3(s) for _ in range(n))


def big(s: Any, rank: int) -> Any:
    return s.ones(*([1] * rank))


BAD: list[Case] = []


def add(section: str, label: str, body: Callable[[Any], Any], messages: bool = True) -> None:
    BAD.append(Case(section, label, body, messages))


# -- autograd.functional: _as_tuple (inputs, v, outputs) on every function -----------------------

AF_NAMES = ("vjp", "jvp", "jacobian", "hessian", "vhp", "hvp")
# what each AF function takes after (func, inputs), for a function of one (3,) input
_V = {
    "vjp": lambda s: (s.ones(3),),
    "jvp": lambda s: (s.ones(3),),
    "jacobian": lambda s: (),
    "hessian": lambda s: (),
    "vhp": lambda s: (s.ones(3),),
    "hvp": lambda s: (s.ones(3),),
}
_SCALAR_OUT = {"hessian", "vhp", "hvp"}  # these need a one-element output


def _f(name: str, s: Any) -> Callable[[Any], Any]:
    return (lambda a: s.sum(a**3)) if name in _SCALAR_OUT else (lambda a: a**2)


for _n in AF_NAMES:
    S = f"AF.{_n} _as_tuple"
    g = lambda s, _n=_n: getattr(s.AF, _n)
    if _n != "vjp":  # AF.vjp's are in cases.py
        add(S, "inputs list", lambda s, g=g, _n=_n: g(s)(_f(_n, s), [x3(s)], *_V[_n](s)))
        add(S, "inputs python float", lambda s, g=g, _n=_n: g(s)(_f(_n, s), 1.0, *_V[_n](s)))
        add(
            S,
            "inputs tuple with float",
            lambda s, g=g, _n=_n: g(s)(
                lambda a, b: _f(_n, s)(a), (x3(s), 1.0), *[(v, v) for v in _V[_n](s)]
            ),
        )
        add(S, "integer input", lambda s, g=g, _n=_n: g(s)(_f(_n, s), s.t([1, 2, 3]), *_V[_n](s)))
    add(
        S,
        "bool input",
        lambda s, g=g, _n=_n: g(s)(
            lambda a: _f(_n, s)(s.double(a)), s.t([True, False, True]), *_V[_n](s)
        ),
    )
    add(
        S,
        "inputs nested tuple",
        lambda s, g=g, _n=_n: g(s)(
            lambda a: _f(_n, s)(a[0]), ((x3(s), y3(s)),), *[(v,) for v in _V[_n](s)]
        ),
    )
    add(S, "inputs dict", lambda s, g=g, _n=_n: g(s)(_f(_n, s), {"a": x3(s)}, *_V[_n](s)))
    add(S, "inputs None", lambda s, g=g, _n=_n: g(s)(_f(_n, s), None, *_V[_n](s)))
    add(
        S,
        "inputs generator",
        lambda s, g=g, _n=_n: g(s)(lambda a, b: _f(_n, s)(a), gen(s), *[(v, v) for v in _V[_n](s)]),
    )
    add(
        S,
        "inputs empty tuple",
        lambda s, g=g, _n=_n: g(s)(lambda: s.sum(x3(s)), (), *[() for _ in _V[_n](s)]),
    )
    add(S, "output None", lambda s, g=g, _n=_n: g(s)(lambda a: None, x3(s), *_V[_n](s)))
    add(S, "output list", lambda s, g=g, _n=_n: g(s)(lambda a: [_f(_n, s)(a)], x3(s), *_V[_n](s)))
    add(
        S,
        "output dict",
        lambda s, g=g, _n=_n: g(s)(lambda a: {"k": _f(_n, s)(a)}, x3(s), *_V[_n](s)),
    )
    add(S, "output python float", lambda s, g=g, _n=_n: g(s)(lambda a: 1.0, x3(s), *_V[_n](s)))
    add(
        S,
        "output generator",
        lambda s, g=g, _n=_n: g(s)(lambda a: (a for _ in range(1)), x3(s), *_V[_n](s)),
    )
    add(
        S,
        "output nested tuple",
        lambda s, g=g, _n=_n: g(s)(lambda a: ((_f(_n, s)(a),),), x3(s), *[(v,) for v in _V[_n](s)]),
    )
    add(S, "func not callable", lambda s, g=g, _n=_n: g(s)(3, x3(s), *_V[_n](s)), messages=False)
    add(S, "func None", lambda s, g=g, _n=_n: g(s)(None, x3(s), *_V[_n](s)), messages=False)
    add(S, "func takes 2, given 1", lambda s, g=g, _n=_n: g(s)(two, x3(s), *_V[_n](s)))
    add(
        S,
        "func takes 1, given 2",
        lambda s, g=g, _n=_n: g(s)(one, (x3(s), y3(s)), *[(v, v) for v in _V[_n](s)]),
    )
    add(
        S,
        "func takes 0, given 1",
        lambda s, g=g, _n=_n: g(s)(lambda: x3(s), x3(s), *_V[_n](s)),
        messages=False,
    )

for _n in ("jvp", "vhp", "hvp"):  # the `v` argument (AF.vjp's are in cases.py)
    S = f"AF.{_n} v"
    g = lambda s, _n=_n: getattr(s.AF, _n)
    f3 = lambda s, _n=_n: _f(_n, s)
    add(S, "v list", lambda s, g=g, f3=f3: g(s)(f3(s), x3(s), [s.ones(3)]))
    add(S, "v python float", lambda s, g=g, f3=f3: g(s)(f3(s), s.t(0.5), 1.0))
    add(
        S,
        "v tuple with int",
        lambda s, g=g, f3=f3: g(s)(lambda a, b: f3(s)(a), (x3(s), y3(s)), (s.ones(3), 2)),
    )
    add(S, "v dict", lambda s, g=g, f3=f3: g(s)(f3(s), x3(s), {"a": s.ones(3)}))
    add(S, "v generator", lambda s, g=g, f3=f3: g(s)(f3(s), x3(s), (s.ones(3) for _ in range(1))))
    add(
        S,
        "v 2-tuple single input",
        lambda s, g=g, f3=f3: g(s)(f3(s), x3(s), (s.ones(3), s.ones(3))),
    )
    add(
        S,
        "v 1-tuple for 2 inputs",
        lambda s, g=g, f3=f3: g(s)(lambda a, b: f3(s)(a), (x3(s), y3(s)), (s.ones(3),)),
    )
    add(
        S,
        "v 3-tuple for 2 inputs",
        lambda s, g=g, f3=f3: g(s)(lambda a, b: f3(s)(a), (x3(s), y3(s)), (s.ones(3),) * 3),
    )
    add(S, "v shape (1,) for 0-d input", lambda s, g=g, f3=f3: g(s)(f3(s), s.t(0.5), s.ones(1)))
    add(S, "v shape () for (3,) input", lambda s, g=g, f3=f3: g(s)(f3(s), x3(s), s.t(1.0)))
    add(S, "v shape (3,1) for (3,)", lambda s, g=g, f3=f3: g(s)(f3(s), x3(s), s.ones(3, 1)))
    add(
        S,
        "v transposed shape",
        lambda s, g=g, f3=f3: g(s)(
            lambda a: s.sum(a**3) if _n != "jvp" else a, s.ones(2, 3), s.ones(3, 2)
        ),
    )
    add(
        S,
        "v entry 0 wrong shape",
        lambda s, g=g, f3=f3: g(s)(
            lambda a, b: f3(s)(a) + s.sum(b) * 0, (x3(s), s.ones(2)), (s.ones(2), s.ones(2))
        ),
    )
    add(
        S,
        "v=None two inputs",
        lambda s, g=g, f3=f3: g(s)(lambda a, b: f3(s)(a), (s.t(0.5), s.t(0.2))),
    )
    add(S, "v=None (2,) input", lambda s, g=g, f3=f3: g(s)(f3(s), s.ones(2)))
    add(
        S,
        "v=None 1-tuple of (1,1)",
        lambda s, g=g, f3=f3: g(s)(lambda a: s.sum(a**3), (s.ones(1, 1),)),
    )
    add(S, "v=None empty input", lambda s, g=g, f3=f3: g(s)(f3(s), s.ones(0)))
    if _n != "jvp":
        add(
            S,
            "v complex for real input",
            lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s), s.ones(3, dtype="complex128")),
        )
        add(S, "v int", lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s), s.ones(3, dtype="int64")))

S = "AF.vjp v"  # what cases.py does not have
add(S, "v dict", lambda s: s.AF.vjp(lambda a: a * 2, x3(s), {"a": s.ones(3)}))
add(S, "v generator", lambda s: s.AF.vjp(lambda a: a * 2, x3(s), (s.ones(3) for _ in range(1))))
add(S, "v None in tuple", lambda s: s.AF.vjp(lambda a: (a, a), x3(s), (s.ones(3), None)))
add(S, "v 3-tuple for 2 outputs", lambda s: s.AF.vjp(lambda a: (a, a), x3(s), (s.ones(3),) * 3))
add(S, "v shape (3,1) for (3,)", lambda s: s.AF.vjp(lambda a: a * 2, x3(s), s.ones(3, 1)))
add(
    S,
    "v shape (2,3) for (3,2)",
    lambda s: s.AF.vjp(lambda a: a.reshape(3, 2), s.ones(6), s.ones(2, 3)),
)
add(S, "v shape () for (1,)", lambda s: s.AF.vjp(lambda a: a[:1], x3(s), s.t(1.0)))
add(
    S,
    "v entry 0 wrong shape",
    lambda s: s.AF.vjp(lambda a: (a, s.sum(a)), x3(s), (s.ones(2), s.t(1.0))),
)
add(S, "v=None empty output", lambda s: s.AF.vjp(lambda a: a[:0], x3(s)))
add(S, "v=None 1-tuple with (1,1)", lambda s: s.AF.vjp(lambda a: (s.sum(a).reshape(1, 1),), x3(s)))
add(
    S,
    "v int for int output",
    lambda s: s.AF.vjp(lambda a: (a * 2, s.long(a)), x3(s), (s.ones(3), s.ones(3, dtype="int64"))),
)

# -- autograd.functional: options --------------------------------------------------------------

S = "AF.jacobian options"
add(
    S,
    "strict+vectorize",
    lambda s: s.AF.jacobian(lambda a: a**2, x3(s), strict=True, vectorize=True),
)
add(
    S,
    "strict+vectorize, output constant (strict check first)",
    lambda s: s.AF.jacobian(lambda a: s.ones(3), x3(s), strict=True, vectorize=True),
)
add(
    S,
    "strict+vectorize, inputs list (inputs first)",
    lambda s: s.AF.jacobian(lambda a: a**2, [x3(s)], strict=True, vectorize=True),
)
add(
    S,
    "forward-mode + create_graph + strict (create_graph first)",
    lambda s: s.AF.jacobian(
        lambda a: a**2,
        x3(s),
        create_graph=True,
        strict=True,
        vectorize=True,
        strategy="forward-mode",
    ),
)
add(
    S,
    "forward-mode + strict, no vectorize (strict first)",
    lambda s: s.AF.jacobian(lambda a: a**2, x3(s), strict=True, strategy="forward-mode"),
)
add(
    S,
    "bad strategy + inputs list",
    lambda s: s.AF.jacobian(lambda a: a**2, [x3(s)], strategy="sideways"),
)
add(S, "strategy None", lambda s: s.AF.jacobian(lambda a: a**2, x3(s), strategy=None))
add(
    S,
    "strict, 2 outputs, second constant",
    lambda s: s.AF.jacobian(lambda a: (a**2, s.ones(2)), x3(s), strict=True),
)
add(S, "output (t, None)", lambda s: s.AF.jacobian(lambda a: (a, None), x3(s)))
add(S, "complex output, vectorize=False", lambda s: s.AF.jacobian(lambda a: a * 1j, x3(s)))
add(S, "0-size output, reverse-mode", lambda s: s.AF.jacobian(lambda a: a[:0], x3(s)))

S = "AF.hessian options"
add(
    S,
    "strict+vectorize",
    lambda s: s.AF.hessian(lambda a: s.sum(a**3), x3(s), strict=True, vectorize=True),
)
add(
    S,
    "bad strategy + inputs list",
    lambda s: s.AF.hessian(lambda a: s.sum(a**3), [x3(s)], outer_jacobian_strategy="nope"),
)
add(
    S,
    "bad strategy + output vector",
    lambda s: s.AF.hessian(lambda a: a**3, x3(s), outer_jacobian_strategy="nope"),
)
add(
    S,
    "forward-mode + create_graph",
    lambda s: s.AF.hessian(
        lambda a: s.sum(a**3),
        x3(s),
        create_graph=True,
        vectorize=True,
        outer_jacobian_strategy="forward-mode",
    ),
)
add(S, "output 0-size", lambda s: s.AF.hessian(lambda a: a[:0], x3(s)))
add(S, "output (1,2)", lambda s: s.AF.hessian(lambda a: a[:2].reshape(1, 2), x3(s)))
add(S, "output int scalar", lambda s: s.AF.hessian(lambda a: s.long(s.sum(a)), x3(s), strict=True))

for _n in ("vhp", "hvp"):
    S = f"AF.{_n} output"
    g = lambda s, _n=_n: getattr(s.AF, _n)
    add(S, "output 2-tuple", lambda s, g=g: g(s)(lambda a: (s.sum(a), s.sum(a)), x3(s), s.ones(3)))
    add(S, "output 0-size", lambda s, g=g: g(s)(lambda a: a[:0], x3(s), s.ones(3)))
    add(S, "output (1,2)", lambda s, g=g: g(s)(lambda a: a[:2].reshape(1, 2), x3(s), s.ones(3)))
    add(S, "output complex scalar", lambda s, g=g: g(s)(lambda a: s.sum(a) * 1j, x3(s), s.ones(3)))

# -- torch.func.vjp ------------------------------------------------------------------------------

S = "func.vjp"
add(S, "func not callable", lambda s: s.TF.vjp(3, x3(s)), messages=False)
add(S, "func None", lambda s: s.TF.vjp(None, x3(s)), messages=False)
add(S, "func takes 2, given 1", lambda s: s.TF.vjp(two, x3(s)))
add(S, "func takes 1, given 2", lambda s: s.TF.vjp(one, x3(s), y3(s)))
add(S, "primal generator", lambda s: s.TF.vjp(lambda a: a, gen(s)))
add(S, "primal None", lambda s: s.TF.vjp(lambda a: x3(s) * 2, None))
add(S, "primal (t, float)", lambda s: s.TF.vjp(lambda p: p[0] * p[1], (x3(s), 2.0)))
add(S, "primal dict with str", lambda s: s.TF.vjp(lambda d: d["a"], {"a": x3(s), "b": "str"}))
add(S, "primal [t, int tensor]", lambda s: s.TF.vjp(lambda p: p[0] * 2, [x3(s), s.t([1, 2])]))
add(S, "primal bool tensor", lambda s: s.TF.vjp(lambda a: s.double(a), s.t([True, False])))
add(S, "output generator", lambda s: s.TF.vjp(lambda a: (a for _ in range(1)), x3(s)))
add(S, "output [t, None]", lambda s: s.TF.vjp(lambda a: [a, None], x3(s)))
add(S, "output {'k': None}", lambda s: s.TF.vjp(lambda a: {"k": None}, x3(s)))
add(S, "output ((),)", lambda s: s.TF.vjp(lambda a: ((),), x3(s)))
add(S, "output {}", lambda s: s.TF.vjp(lambda a: {}, x3(s)))
add(S, "output 'str'", lambda s: s.TF.vjp(lambda a: "str", x3(s)))
add(S, "has_aux output None", lambda s: s.TF.vjp(lambda a: None, x3(s), has_aux=True))
add(S, "has_aux (None, aux)", lambda s: s.TF.vjp(lambda a: (None, a), x3(s), has_aux=True))
add(
    S,
    "has_aux aux generator",
    lambda s: s.TF.vjp(lambda a: (a, (a for _ in range(1))), x3(s), has_aux=True),
)
add(
    S,
    "has_aux aux {'k': None}",
    lambda s: s.TF.vjp(lambda a: (a, {"k": None}), x3(s), has_aux=True),
)
add(S, "has_aux aux 1.0", lambda s: s.TF.vjp(lambda a: (a, 1.0), x3(s), has_aux=True))
add(S, "cot None for tuple", lambda s: s.TF.vjp(lambda a: (a, a), x3(s))[1](None))
add(S, "cot generator", lambda s: s.TF.vjp(lambda a: a * 2, x3(s))[1](s.ones(3) for _ in range(1)))
add(S, "cot str", lambda s: s.TF.vjp(lambda a: a * 2, x3(s))[1]("ones"))
add(S, "cot int (python)", lambda s: s.TF.vjp(lambda a: s.sum(a), x3(s))[1](1))
add(S, "cot tuple too long", lambda s: s.TF.vjp(lambda a: (a, a), x3(s))[1]((s.ones(3),) * 3))
add(S, "cot tuple too short", lambda s: s.TF.vjp(lambda a: (a, a), x3(s))[1]((s.ones(3),)))
add(
    S,
    "cot dict extra key",
    lambda s: s.TF.vjp(lambda a: {"a": a}, x3(s))[1]({"a": s.ones(3), "b": s.ones(3)}),
)
add(S, "cot dict other key", lambda s: s.TF.vjp(lambda a: {"a": a}, x3(s))[1]({"b": s.ones(3)}))
# torch's message for a bad cotangent that is not the first one is garbage: it formats the
# index with ``grads.index(grad)``, which compares tensors and fails with "Boolean value of
# Tensor with more than one value is ambiguous" or a broadcasting error; only the class counts
add(
    S,
    "cot nested wrong shape",
    lambda s: s.TF.vjp(lambda a: (s.sin(a), {"k": [s.cos(a), s.sum(a)]}), x3(s))[1](
        (s.ones(3), {"k": [s.ones(3), s.ones(1)]})
    ),
    messages=False,
)
add(
    S,
    "cot dict in another key order",
    lambda s: s.TF.vjp(lambda a: {"z": s.sin(a), "a": s.cos(a)}, x3(s))[1](
        {"a": s.ones(3), "z": s.ones(3)}
    ),
)
add(
    S,
    "primal dict (unsorted keys) with float",
    lambda s: s.TF.vjp(lambda d: d["z"] * d["a"], {"z": x3(s), "a": 2.0}),
)
add(S, "cot (3,1) for (3,)", lambda s: s.TF.vjp(lambda a: a * 2, x3(s))[1](s.ones(3, 1)))
add(
    S,
    "cot (2,3) for (3,2)",
    lambda s: s.TF.vjp(lambda a: a.reshape(3, 2), s.ones(6))[1](s.ones(2, 3)),
)
add(S, "cot () for (1,)", lambda s: s.TF.vjp(lambda a: a[:1], x3(s))[1](s.t(1.0)))
add(S, "cot empty for scalar", lambda s: s.TF.vjp(lambda a: s.sum(a), x3(s))[1](s.ones(0)))
add(
    S,
    "cot complex for real (2nd output)",
    lambda s: s.TF.vjp(lambda a: (s.sin(a), a * 2), x3(s))[1](
        (s.ones(3), s.ones(3, dtype="complex128"))
    ),
    messages=False,
)
add(
    S,
    "cot wrong shape (2nd output)",
    lambda s: s.TF.vjp(lambda a: (s.sin(a), a * 2), x3(s))[1]((s.ones(3), s.ones(2))),
    messages=False,
)
add(S, "vjp_fn no argument", lambda s: s.TF.vjp(lambda a: a * 2, x3(s))[1](), messages=False)
add(
    S,
    "vjp_fn four arguments",
    lambda s: s.TF.vjp(lambda a: a * 2, x3(s))[1](s.ones(3), True, None, 1),
    messages=False,
)
add(S, "huge rank 33 (1,)*33", lambda s: s.TF.vjp(s.sin, big(s, 33))[1](big(s, 33)))
add(S, "huge rank 33 reduce", lambda s: s.TF.vjp(lambda a: s.sum(a), big(s, 33))[1](s.t(2.0)))

# -- torch.func.jvp ------------------------------------------------------------------------------

S = "func.jvp"
add(S, "func not callable", lambda s: s.TF.jvp(3, (x3(s),), (s.ones(3),)), messages=False)
add(S, "func takes 2, given 1", lambda s: s.TF.jvp(two, (x3(s),), (s.ones(3),)))
add(S, "primals generator", lambda s: s.TF.jvp(s.sin, gen(s, 1), (s.ones(3),)))
add(S, "primals None", lambda s: s.TF.jvp(s.sin, None, None))
add(S, "primals dict", lambda s: s.TF.jvp(lambda d: d["a"], {"a": x3(s)}, {"a": s.ones(3)}))
add(S, "tangents generator", lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(3) for _ in range(1))))
add(S, "tangents None", lambda s: s.TF.jvp(s.sin, (x3(s),), None))
add(S, "tangents (None,)", lambda s: s.TF.jvp(s.sin, (x3(s),), (None,)))
add(S, "tangents too few", lambda s: s.TF.jvp(mul, (x3(s), y3(s)), (s.ones(3),)))
add(
    S,
    "tangents dict keys differ",
    lambda s: s.TF.jvp(lambda d: d["a"], ({"a": x3(s)},), ({"b": s.ones(3)},)),
)
add(S, "tangents dict vs tuple", lambda s: s.TF.jvp(lambda d: d[0], ((x3(s),),), ({0: s.ones(3)},)))
add(
    S,
    "tangents dict in another key order",
    lambda s: s.TF.jvp(
        lambda d: d["a"] * d["z"], ({"z": x3(s), "a": y3(s)},), ({"a": s.ones(3), "z": s.ones(3)},)
    ),
)
add(
    S,
    "primals dict (unsorted keys) with float",
    lambda s: s.TF.jvp(lambda d: d["z"], ({"z": x3(s), "a": 1.0},), ({"z": s.ones(3), "a": 1.0},)),
)
add(
    S,
    "tangents list vs tuple (nested)",
    lambda s: s.TF.jvp(lambda p: p[0], ((x3(s),),), ([s.ones(3)],)),
)
add(
    S,
    "primal (t, float) nested",
    lambda s: s.TF.jvp(lambda p: p[0], ((x3(s), 2.0),), ((s.ones(3), 1.0),)),
)
add(
    S,
    "tangent float nested",
    lambda s: s.TF.jvp(lambda p: p[0], ((x3(s), y3(s)),), ((s.ones(3), 1.0),)),
)
add(S, "tangent str", lambda s: s.TF.jvp(s.sin, (x3(s),), ("ones",)))
add(
    S,
    "tangent nested wrong shape",
    lambda s: s.TF.jvp(
        lambda p: p["a"] * p["b"], ({"a": x3(s), "b": y3(s)},), ({"a": s.ones(3), "b": s.ones(2)},)
    ),
)
add(S, "tangent (3,1) for (3,)", lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(3, 1),)))
add(S, "tangent (2,3) for (3,2)", lambda s: s.TF.jvp(s.sin, (s.ones(3, 2),), (s.ones(2, 3),)))
add(S, "tangent () for (1,)", lambda s: s.TF.jvp(s.sin, (s.ones(1),), (s.t(1.0),)))
add(
    S, "int primal int tangent", lambda s: s.TF.jvp(lambda a: a * 2, (s.t([1, 2]),), (s.t([1, 1]),))
)
add(
    S, "bool primal", lambda s: s.TF.jvp(lambda a: s.double(a), (s.t([True, False]),), (s.ones(2),))
)
add(
    S,
    "int primal, float tangent wrong shape",
    lambda s: s.TF.jvp(lambda a: a * 2, (s.t([1, 2]),), (s.ones(3),)),
)
add(
    S,
    "output generator",
    lambda s: s.TF.jvp(lambda a: (a for _ in range(1)), (x3(s),), (s.ones(3),)),
)
add(S, "output ()", lambda s: s.TF.jvp(lambda a: (), (x3(s),), (s.ones(3),)))
add(S, "output [t, 1]", lambda s: s.TF.jvp(lambda a: [a, 1], (x3(s),), (s.ones(3),)))
add(S, "output (t, None)", lambda s: s.TF.jvp(lambda a: (a, None), (x3(s),), (s.ones(3),)))
add(
    S,
    "has_aux 3-tuple",
    lambda s: s.TF.jvp(lambda a: (a, a, a), (x3(s),), (s.ones(3),), has_aux=True),
)
add(
    S, "has_aux aux int", lambda s: s.TF.jvp(lambda a: (a, 1), (x3(s),), (s.ones(3),), has_aux=True)
)
add(
    S,
    "has_aux aux None",
    lambda s: s.TF.jvp(lambda a: (a, None), (x3(s),), (s.ones(3),), has_aux=True),
)
add(
    S,
    "has_aux output None",
    lambda s: s.TF.jvp(lambda a: (None, a), (x3(s),), (s.ones(3),), has_aux=True),
)
add(
    S,
    "kwargs",
    lambda s: s.TF.jvp(lambda a, k=1.0: a * k, (x3(s),), (s.ones(3),), k=2.0),
    messages=False,
)
add(S, "huge rank 33", lambda s: s.TF.jvp(s.sin, (big(s, 33),), (big(s, 33),)))

# -- torch.func.grad / grad_and_value ------------------------------------------------------------

S = "func.grad"
add(S, "func not callable", lambda s: s.TF.grad(3)(x3(s)), messages=False)
add(S, "grad(non-callable) not called", lambda s: s.TF.grad(3))
add(S, "func takes 2, given 1", lambda s: s.TF.grad(two)(x3(s)))
add(
    S,
    "func takes 1, given 2",
    lambda s: s.TF.grad(lambda a: s.sum(a))(x3(s), y3(s)),
    messages=False,
)
add(S, "kwargs only", lambda s: s.TF.grad(lambda a: s.sum(a))(a=x3(s)))
add(S, "generator arg", lambda s: s.TF.grad(lambda a: s.sum(x3(s)))(gen(s)))
add(S, "None arg", lambda s: s.TF.grad(lambda a: s.sum(x3(s)))(None))
add(S, "pytree arg with float", lambda s: s.TF.grad(lambda p: s.sum(p[0]) * p[1])((x3(s), 2.0)))
add(
    S,
    "pytree arg with int tensor",
    lambda s: s.TF.grad(lambda p: s.sum(p[0]))((x3(s), s.t([1, 2]))),
)
add(S, "bool arg", lambda s: s.TF.grad(lambda a: s.sum(s.double(a)))(s.t([True, False])))
add(S, "output generator", lambda s: s.TF.grad(lambda a: (a for _ in range(1)))(x3(s)))
add(S, "output 0-size", lambda s: s.TF.grad(lambda a: a[:0])(x3(s)))
add(S, "output (1,1)", lambda s: s.TF.grad(lambda a: s.sum(a).reshape(1, 1))(x3(s)))
add(S, "output dict", lambda s: s.TF.grad(lambda a: {"k": s.sum(a)})(x3(s)))
add(S, "output int python", lambda s: s.TF.grad(lambda a: 1)(x3(s)))
add(S, "has_aux output None", lambda s: s.TF.grad(lambda a: None, has_aux=True)(x3(s)))
add(S, "has_aux (vector, aux)", lambda s: s.TF.grad(lambda a: (a, a), has_aux=True)(x3(s)))
add(S, "has_aux aux 'str'", lambda s: s.TF.grad(lambda a: (s.sum(a), "str"), has_aux=True)(x3(s)))
add(
    S,
    "has_aux aux generator",
    lambda s: s.TF.grad(lambda a: (s.sum(a), (a for _ in range(1))), has_aux=True)(x3(s)),
)
add(S, "argnums=(0, 1.0)", lambda s: s.TF.grad(mul, argnums=(0, 1.0))(*(x3(s), y3(s))))
add(S, "argnums=None", lambda s: s.TF.grad(mul, argnums=None)(x3(s), y3(s)))
add(S, "argnums=(0, 5)", lambda s: s.TF.grad(mul, argnums=(0, 5))(x3(s), y3(s)))
add(
    S,
    "argnums=(-1, 1)",
    lambda s: s.TF.grad(lambda a, b: s.sum(a * b), argnums=(-1, 1))(x3(s), y3(s)),
)
add(S, "argnums='0'", lambda s: s.TF.grad(mul, argnums="0")(x3(s), y3(s)))
add(S, "argnums=((0,),)", lambda s: s.TF.grad(mul, argnums=((0,),))(x3(s), y3(s)))

S = "func.grad_and_value"
add(S, "vector output", lambda s: s.TF.grad_and_value(lambda a: a * 2)(x3(s)))
add(S, "None output", lambda s: s.TF.grad_and_value(lambda a: None)(x3(s)))
add(S, "argnums=2", lambda s: s.TF.grad_and_value(mul, argnums=2)(s.t(2.0), s.t(3.0)))
add(S, "argnums=[0]", lambda s: s.TF.grad_and_value(mul, argnums=[0])(s.t(2.0), s.t(3.0)))
add(S, "has_aux list", lambda s: s.TF.grad_and_value(lambda a: [s.sum(a), a], has_aux=True)(x3(s)))
add(
    S,
    "has_aux aux None",
    lambda s: s.TF.grad_and_value(lambda a: (s.sum(a), None), has_aux=True)(x3(s)),
)
add(S, "float arg", lambda s: s.TF.grad_and_value(lambda a: a * 2)(2.0))
add(S, "int arg", lambda s: s.TF.grad_and_value(lambda a: s.sum(a * 2))(s.t([1, 2])))
add(S, "complex output", lambda s: s.TF.grad_and_value(lambda a: s.sum(a) * 1j)(x3(s)))
add(S, "huge rank 33", lambda s: s.TF.grad_and_value(lambda a: s.sum(s.sin(a)))(big(s, 33)))

# -- torch.func.jacrev / jacfwd / hessian ---------------------------------------------------------

for _j in ("jacrev", "jacfwd"):
    S = f"func.{_j}"
    J = lambda s, _j=_j: getattr(s.TF, _j)
    add(S, "func not callable", lambda s, J=J: J(s)(3)(x3(s)), messages=False)
    add(S, "func takes 2, given 1", lambda s, J=J: J(s)(two)(x3(s)))
    add(S, "kwargs", lambda s, J=J: J(s)(lambda a, k=1.0: a * k)(x3(s), k=2.0), messages=False)
    add(S, "no args", lambda s, J=J: J(s)(lambda: x3(s))())
    add(S, "argnums=[0]", lambda s, J=J: J(s)(mul, argnums=[0])(x3(s), y3(s)))
    add(S, "argnums=-3", lambda s, J=J: J(s)(mul, argnums=-3)(x3(s), y3(s)))
    add(S, "argnums=(0, '1')", lambda s, J=J: J(s)(mul, argnums=(0, "1"))(x3(s), y3(s)))
    add(S, "argnums=(1, -1)", lambda s, J=J: J(s)(mul, argnums=(1, -1))(x3(s), y3(s)))
    add(S, "float arg at argnum", lambda s, J=J: J(s)(lambda a: a * 2)(2.0))
    add(S, "generator arg", lambda s, J=J: J(s)(lambda a: x3(s))(gen(s)))
    add(S, "pytree arg with float", lambda s, J=J: J(s)(lambda p: p[0] * p[1])((x3(s), 2.0)))
    add(S, "output None", lambda s, J=J: J(s)(lambda a: None)(x3(s)))
    add(S, "output (t, None)", lambda s, J=J: J(s)(lambda a: (a, None))(x3(s)))
    add(S, "output generator", lambda s, J=J: J(s)(lambda a: (a for _ in range(1)))(x3(s)))
    add(S, "output 'str'", lambda s, J=J: J(s)(lambda a: "str")(x3(s)))
    add(S, "has_aux not a tuple", lambda s, J=J: J(s)(lambda a: a, has_aux=True)(x3(s)))
    add(S, "has_aux aux None", lambda s, J=J: J(s)(lambda a: (a, None), has_aux=True)(x3(s)))
    add(
        S,
        "complex input in pytree",
        lambda s, J=J: J(s)(lambda p: s.real(p[1]) * p[0])((x3(s), s.t([1j, 2j, 3j]))),
    )
    add(S, "bool input", lambda s, J=J: J(s)(lambda a: s.double(a))(s.t([True, False])))
    add(S, "huge rank 17", lambda s, J=J: J(s)(s.sin)(big(s, 17)))
    add(S, "huge rank 33", lambda s, J=J: J(s)(s.sin)(big(s, 33)))
add("func.jacfwd", "randomness bad", lambda s: s.TF.jacfwd(s.sin, randomness="bogus")(x3(s)))
add(
    "func.jacfwd",
    "has_aux 3-tuple",
    lambda s: s.TF.jacfwd(lambda a: (a, a, a), has_aux=True)(x3(s)),
)
add("func.jacrev", "chunk_size=0 not called", lambda s: s.TF.jacrev(s.sin, chunk_size=0))

S = "func.hessian"
add(S, "func not callable", lambda s: s.TF.hessian(3)(x3(s)), messages=False)
add(S, "argnums=[0]", lambda s: s.TF.hessian(mul, argnums=[0])(x3(s), y3(s)))
add(S, "argnums=2", lambda s: s.TF.hessian(mul, argnums=2)(x3(s), y3(s)))
add(S, "argnums=()", lambda s: s.TF.hessian(mul, argnums=())(x3(s), y3(s)))
add(
    S,
    "kwargs",
    lambda s: s.TF.hessian(lambda a, k=1.0: s.sum(a**3) * k)(x3(s), k=2.0),
    messages=False,
)
add(S, "int input", lambda s: s.TF.hessian(lambda a: s.sum(a**3))(s.t([1, 2])))
add(S, "complex input", lambda s: s.TF.hessian(lambda z: s.sum(s.real(z * z)))(s.t([1 + 1j])))
add(S, "output None", lambda s: s.TF.hessian(lambda a: None)(x3(s)))
add(S, "float arg", lambda s: s.TF.hessian(lambda a: a**3)(2.0))

# -- torch.func.linearize -------------------------------------------------------------------------

S = "func.linearize"
add(S, "func not callable", lambda s: s.TF.linearize(3, x3(s)), messages=False)
add(S, "func takes 2, given 1", lambda s: s.TF.linearize(two, x3(s)))
add(S, "int primal", lambda s: s.TF.linearize(lambda a: a * 2, s.t([1, 2])))
add(S, "generator primal", lambda s: s.TF.linearize(lambda a: x3(s), gen(s)), messages=False)
add(S, "output None", lambda s: s.TF.linearize(lambda a: None, x3(s)))
add(S, "jvp_fn too few tangents", lambda s: s.TF.linearize(mul, x3(s), y3(s))[1](s.ones(3)))
add(S, "jvp_fn too many tangents", lambda s: s.TF.linearize(s.sin, x3(s))[1](s.ones(3), s.ones(3)))
add(S, "jvp_fn tangent python float", lambda s: s.TF.linearize(s.sin, s.t(0.5))[1](1.0))
add(
    S,
    "jvp_fn tangent int dtype",
    lambda s: s.TF.linearize(s.sin, x3(s))[1](s.ones(3, dtype="int64")),
)
add(
    S,
    "jvp_fn tangent complex",
    lambda s: s.TF.linearize(s.sin, x3(s))[1](s.ones(3, dtype="complex128")),
)
add(S, "jvp_fn tangent (3,1)", lambda s: s.TF.linearize(s.sin, x3(s))[1](s.ones(3, 1)))
add(
    S,
    "jvp_fn nested wrong shape",
    lambda s: s.TF.linearize(lambda p: p[0] * p[1], (x3(s), y3(s)))[1]((s.ones(3), s.ones(2))),
)
add(
    S,
    "jvp_fn dict keys differ",
    lambda s: s.TF.linearize(lambda d: d["a"], {"a": x3(s)})[1]({"b": s.ones(3)}),
)
add(
    S,
    "jvp_fn dict in another key order",
    lambda s: s.TF.linearize(lambda d: d["a"] * d["z"], {"z": x3(s), "a": y3(s)})[1](
        {"a": s.ones(3), "z": s.ones(3)}
    ),
)
add(S, "jvp_fn tangent None", lambda s: s.TF.linearize(s.sin, x3(s))[1](None))

# -- torch.func.vmap ------------------------------------------------------------------------------

S = "func.vmap"
add(S, "func not callable", lambda s: s.TF.vmap(3)(s.ones(2, 3)), messages=False)
add(S, "vmap(non-callable) not called", lambda s: s.TF.vmap(3))
add(S, "func takes 2, given 1", lambda s: s.TF.vmap(two)(s.ones(2, 3)))
add(S, "generator arg", lambda s: s.TF.vmap(lambda a: a)(gen(s)))
add(S, "None arg, in_dim 0", lambda s: s.TF.vmap(lambda a, b: a)(s.ones(2), None))
add(S, "output None", lambda s: s.TF.vmap(lambda a: None)(s.ones(2, 3)))
add(S, "output (t, None)", lambda s: s.TF.vmap(lambda a: (a, None))(s.ones(2, 3)))
add(S, "output generator", lambda s: s.TF.vmap(lambda a: (a for _ in range(1)))(s.ones(2, 3)))
add(S, "output int", lambda s: s.TF.vmap(lambda a: 1)(s.ones(2, 3)))
add(S, "in_dim on 0-d tensor", lambda s: s.TF.vmap(lambda a: a)(s.t(1.0)))
add(S, "in_dim -3 on 2-d", lambda s: s.TF.vmap(lambda a: a, in_dims=-3)(s.ones(2, 3)))
add(S, "in_dims (0, [0])", lambda s: s.TF.vmap(mul, in_dims=(0, [0]))(s.ones(2, 3), s.ones(2, 3)))
add(
    S,
    "in_dims dict keys differ",
    lambda s: s.TF.vmap(lambda d: d["a"], in_dims=({"b": 0},))({"a": s.ones(2, 3)}),
)
add(S, "in_dims str", lambda s: s.TF.vmap(s.sin, in_dims="0")(s.ones(2)))
add(S, "in_dims (0.0,)", lambda s: s.TF.vmap(s.sin, in_dims=(0.0,))(s.ones(2)))
add(S, "out_dims float", lambda s: s.TF.vmap(s.sin, out_dims=0.0)(s.ones(2)))
add(S, "out_dims list", lambda s: s.TF.vmap(lambda a: (a, a), out_dims=[0, 0])(s.ones(2, 3)))
add(S, "out_dims out of range", lambda s: s.TF.vmap(s.sin, out_dims=3)(s.ones(2, 3)))
add(
    S,
    "size mismatch in pytree",
    lambda s: s.TF.vmap(lambda p: p[0] * p[1])((s.ones(2, 3), s.ones(3, 3))),
)
add(
    S,
    "size mismatch with dict",
    lambda s: s.TF.vmap(lambda d: d["a"] * d["b"])({"a": s.ones(2), "b": s.ones(4)}),
)
add(
    S,
    "grad of dict (unsorted keys) with int leaf",
    lambda s: s.TF.grad(lambda d: s.sum(d["z"]))({"z": x3(s), "a": 1}),
)
add(
    S,
    "size mismatch in_dim 1",
    lambda s: s.TF.vmap(mul, in_dims=(0, 1))(s.ones(2, 3), s.ones(2, 3)),
)
add(S, "kwargs only", lambda s: s.TF.vmap(lambda a=None: a)(a=s.ones(2)))
add(S, "huge rank 33", lambda s: s.TF.vmap(s.sin)(big(s, 33)))
add(S, "rank 65", lambda s: s.TF.vmap(s.sin)(big(s, 65)))

S = "AF huge rank"
add(S, "AF.vjp rank 33", lambda s: s.AF.vjp(s.sin, big(s, 33), big(s, 33)))
add(S, "AF.jvp rank 33", lambda s: s.AF.jvp(s.sin, big(s, 33), big(s, 33)))
add(S, "AF.jacobian rank 17", lambda s: s.AF.jacobian(s.sin, big(s, 17)))
add(S, "AF.jacobian rank 33", lambda s: s.AF.jacobian(s.sin, big(s, 33)))
add(S, "AF.hessian rank 33", lambda s: s.AF.hessian(lambda a: s.sum(a**3), big(s, 33)))
add(S, "AF.hvp rank 33", lambda s: s.AF.hvp(lambda a: s.sum(a**3), big(s, 33), big(s, 33)))


# -- the differential test --------------------------------------------------------------------------


_TORCH_ARTIFACT = "torch artifact, not semantics: "
_BEYOND_TORCH = "jaxfunc deliberately differs: "
#: Cases where jaxfunc is not expected to copy torch (strict xfail: if jaxfunc starts to
#: copy torch, the XPASS fails and the entry must go).
EXPECTED_DIFFERENCES = {
    **{
        f"func.{fn}: {label}": _TORCH_ARTIFACT
        + "AttributeError ('float' object has no attribute 'numel')"
        for fn, label in [
            ("jacfwd", "float arg at argnum"),
            ("jacfwd", "generator arg"),
            ("jacfwd", "pytree arg with float"),
            ("hessian", "float arg"),
        ]
    },
    **{
        f"func.linearize: {label}": _TORCH_ARTIFACT
        + "AttributeError (no attribute 'new_empty' / 'shape')"
        for label in ["generator primal", "jvp_fn tangent python float", "jvp_fn tangent None"]
    },
    **{
        f"AF.{fn} _as_tuple: inputs empty tuple": _TORCH_ARTIFACT
        + "IndexError('tuple index out of range')"
        for fn in ("jacobian", "hessian", "vhp", "hvp")
    },
    "AF.jacobian options: 0-size output, reverse-mode": _TORCH_ARTIFACT
    + "'stack expects a non-empty TensorList' (spec: corner case, not tested)",
    "AF.jacobian options: strict+vectorize": _BEYOND_TORCH
    + "documented in AF.jacobian: strict=True works together with vectorize=True",
    "AF.hessian options: strict+vectorize": _BEYOND_TORCH
    + "documented in AF.hessian: strict=True works together with vectorize=True",
    "func.grad: grad(non-callable) not called": _BEYOND_TORCH
    + "jaxfunc checks callability when grad() is called, torch when the wrapper is",
    "func.vmap: vmap(non-callable) not called": _BEYOND_TORCH
    + "jaxfunc checks callability when vmap() is called, torch when the wrapper is",
}


def _params() -> list[Any]:
    params = []
    for c in BAD:
        reason = EXPECTED_DIFFERENCES.get(c.id)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(c, id=c.id, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, path: str) -> None:
    want = torch_outcome("bad", case)
    side = WatchedJaxSide()
    got = outcome(case.body, side)
    assert side.calls, "the case never called jaxfunc"
    assert_same(got, want, messages=case.messages)


@pytest.mark.skipif(not HAVE_TORCH, reason="checks the record against a live torch 2.13")
@pytest.mark.parametrize(
    "case", [c for c in BAD if c.id in EXPECTED_DIFFERENCES], ids=lambda c: c.id
)
def test_expected_differences_are_recorded_as_torch_gives_them(case: Case) -> None:
    """test_bad_input's strict xfails would swallow a stale record: checked here."""
    torch_outcome("bad", case)  # with torch, asserts that the record equals live torch


def test_case_ids_unique() -> None:
    ids = [c.id for c in BAD]
    assert len(ids) == len(set(ids))
    assert set(EXPECTED_DIFFERENCES) <= set(ids), set(EXPECTED_DIFFERENCES) - set(ids)
    from cases import CASES

    assert not set(ids) & {c.id for c in CASES}, "already in tests/cases.py"


# -- the watcher catches mutation (so the differential test above would) ---------------------------


def test_watcher_catches_mutation() -> None:
    log: list[str] = []

    def mutate_array(x: np.ndarray) -> None:
        x[0] = 99.0

    def mutate_dict(d: dict) -> None:
        d["new"] = 1

    def mutate_list(xs: list) -> None:
        xs.append(1)

    def reorder(d: dict) -> None:
        v = d.pop("a")
        d["a"] = v

    def freeze(x: np.ndarray) -> None:
        x.flags.writeable = False

    def raise_after_mutation(xs: list) -> None:
        xs.pop()
        raise ValueError("boom")

    for fn, arg in [
        (mutate_array, np.zeros(3)),
        (mutate_dict, {"a": 1}),
        (mutate_list, [np.zeros(2)]),
        (reorder, {"a": 1, "b": 2}),
        (freeze, np.zeros(2)),
        (raise_after_mutation, [1, 2]),
    ]:
        with pytest.raises(Mutated):
            Watched(fn, fn.__name__, log)(arg)
    Watched(lambda x: x.sum(), "ok", log)(np.zeros(3))  # reading is fine


# -- jaxfunc-only behaviour: numpy inputs (torch rejects them) ------------------------------------

X = np.array([0.1, 0.2, 0.3])
V = np.array([1.0, 2.0, 3.0])


def _watch(obj: Any) -> Any:
    return Watched(obj, getattr(obj, "__name__", "fn"), [])


def _jnp_version(tree: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, tree
    )


NUMPY_OK = {
    "AF.vjp": lambda x, v: _watch(AF.vjp)(lambda a: a**2, x, v),
    "AF.vjp tuple": lambda x, v: _watch(AF.vjp)(lambda a, b: a * b, (x, v), v),
    "AF.jvp": lambda x, v: _watch(AF.jvp)(lambda a: a**2, x, v),
    "AF.jacobian": lambda x, v: _watch(AF.jacobian)(lambda a: a**2, x),
    "AF.hessian": lambda x, v: _watch(AF.hessian)(lambda a: (a**3).sum(), x),
    "AF.vhp": lambda x, v: _watch(AF.vhp)(lambda a: (a**3).sum(), x, v),
    "AF.hvp": lambda x, v: _watch(AF.hvp)(lambda a: (a**3).sum(), x, v),
    "TF.vjp": lambda x, v: (lambda o: (o[0], o[1](v)))(_watch(TF.vjp)(jnp.sin, x)),
    "TF.vjp dict primal": lambda x, v: (lambda o: (o[0], o[1](v)))(
        _watch(TF.vjp)(lambda d: d["a"] * d["b"], {"a": x, "b": v})
    ),
    "TF.vjp list primal": lambda x, v: (lambda o: (o[0], o[1](v)))(
        _watch(TF.vjp)(lambda p: p[0] * p[1], [x, v])
    ),
    "TF.jvp": lambda x, v: _watch(TF.jvp)(jnp.sin, (x,), (v,)),
    "TF.grad": lambda x, v: _watch(TF.grad(lambda a, b: (a * b).sum(), argnums=(0, 1)))(x, v),
    "TF.grad dict": lambda x, v: _watch(TF.grad(lambda d: (d["a"] * d["b"]).sum()))(
        {"a": x, "b": v}
    ),
    "TF.jacrev": lambda x, v: _watch(TF.jacrev(jnp.sin))(x),
    "TF.jacfwd": lambda x, v: _watch(TF.jacfwd(jnp.sin))(x),
    "TF.hessian": lambda x, v: _watch(TF.hessian(lambda a: (a**3).sum()))(x),
    "TF.linearize": lambda x, v: (lambda o: (o[0], o[1](v)))(_watch(TF.linearize)(jnp.sin, x)),
    "TF.vmap": lambda x, v: _watch(TF.vmap(jnp.multiply))(x, v),
}


@pytest.mark.parametrize("name", list(NUMPY_OK))
def test_numpy_inputs_match_jax_inputs(name: str) -> None:
    """numpy arrays are tensors to jaxfunc: same results as jax arrays, inputs untouched."""
    x, v = X.copy(), V.copy()
    x.flags.writeable = False  # a write would raise, not just change a value
    got = NUMPY_OK[name](x, v)
    want = NUMPY_OK[name](jnp.asarray(X), jnp.asarray(V))
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert isinstance(g, jax.Array), f"a numpy input gave a {type(g)} result"
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(v, V)


def test_numpy_float32_stays_float32() -> None:
    x = np.array([0.1, 0.2], dtype=np.float32)
    out, (g,) = AF.vjp(lambda a: a * 2, (x,), np.ones(2, np.float32))
    assert out.dtype == jnp.float32 and g.dtype == jnp.float32


OBJ = np.array([0.1, 0.2, 0.3], dtype=object)
_NOT_FLOAT = "only Tensors of floating point dtype can require gradients"
_NOT_FLOAT_FWD = "Expected primal to be floating point or complex, but got: torch.object"
#: name -> (call, exception class, message pattern). An object (or integer) numpy array is a
#: tensor of a non-floating dtype to jaxfunc, so it gets torch's errors for such tensors.
NUMPY_BAD = {
    "AF.vjp object input": (lambda: AF.vjp(lambda a: a * 2, OBJ, V), RuntimeError, _NOT_FLOAT),
    "AF.jvp object input": (lambda: AF.jvp(lambda a: a * 2, OBJ, V), RuntimeError, _NOT_FLOAT),
    "AF.jacobian object input": (
        lambda: AF.jacobian(lambda a: a * 2, (X, OBJ)),
        RuntimeError,
        _NOT_FLOAT,
    ),
    "AF.hessian object input": (
        lambda: AF.hessian(lambda a: (a**3).sum(), OBJ),
        RuntimeError,
        _NOT_FLOAT,
    ),
    "TF.vjp object primal": (lambda: TF.vjp(jnp.sin, OBJ), RuntimeError, _NOT_FLOAT),
    "TF.grad object arg": (lambda: TF.grad(lambda a: a.sum())(OBJ), RuntimeError, _NOT_FLOAT),
    "TF.jacrev object arg": (lambda: TF.jacrev(jnp.sin)(OBJ), RuntimeError, _NOT_FLOAT),
    "TF.jvp object primal": (lambda: TF.jvp(jnp.sin, (OBJ,), (V,)), ValueError, _NOT_FLOAT_FWD),
    "TF.jacfwd object arg": (lambda: TF.jacfwd(jnp.sin)(OBJ), ValueError, _NOT_FLOAT_FWD),
    "TF.linearize object primal": (lambda: TF.linearize(jnp.sin, OBJ), ValueError, _NOT_FLOAT_FWD),
    "TF.jvp object tangent": (lambda: TF.jvp(jnp.sin, (X,), (OBJ,)), ValueError, "torch.object"),
    # an object v / cotangent / vmapped argument cannot be cast: a TypeError that says so
    # (not an error from inside JAX's tracing machinery)
    "AF.vjp object v": (lambda: AF.vjp(lambda a: a * 2, X, OBJ), TypeError, "object"),
    "AF.hvp object v": (lambda: AF.hvp(lambda a: (a**3).sum(), X, OBJ), TypeError, "object"),
    "TF.vjp object cotangent": (lambda: TF.vjp(jnp.sin, X)[1](OBJ), TypeError, "object"),
    "TF.vmap object arg": (lambda: TF.vmap(jnp.sin)(OBJ), TypeError, "object"),
    # numpy integer arrays: the integer-tensor errors
    "AF.vjp int64 numpy": (
        lambda: AF.vjp(lambda a: a * 2, np.arange(3), V),
        RuntimeError,
        _NOT_FLOAT,
    ),
    "TF.vjp int64 numpy": (lambda: TF.vjp(lambda a: a * 2, np.arange(3)), RuntimeError, _NOT_FLOAT),
    "TF.jvp int64 numpy": (
        lambda: TF.jvp(lambda a: a * 2, (np.arange(3),), (V,)),
        ValueError,
        "torch.int64",
    ),
    "TF.grad bool numpy": (
        lambda: TF.grad(lambda a: a.sum())(np.array([True])),
        RuntimeError,
        _NOT_FLOAT,
    ),
    # numpy v / cotangent / tangent of the wrong shape: the same errors as for jax arrays
    "AF.vjp numpy v wrong shape": (
        lambda: AF.vjp(lambda a: a * 2, X, np.ones(2)),
        RuntimeError,
        r"v has invalid size: should be torch.Size\(\[3\]\) but got torch.Size\(\[2\]\)",
    ),
    "TF.vjp numpy cot wrong shape": (
        lambda: TF.vjp(jnp.sin, X)[1](np.ones(2)),
        RuntimeError,
        "Mismatch in shape",
    ),
    "TF.jvp numpy tangent wrong shape": (
        lambda: TF.jvp(jnp.sin, (X,), (np.ones(2),)),
        RuntimeError,
        "different size than that of the original Tensor",
    ),
}


@pytest.mark.parametrize("name", list(NUMPY_BAD))
def test_numpy_bad_inputs(name: str) -> None:
    """No torch counterpart (torch rejects numpy): jaxfunc raises torch's class for the misuse."""
    call, cls, pattern = NUMPY_BAD[name]
    keep = snapshot((OBJ, X, V))
    with pytest.raises(cls, match=pattern) as info:
        call()
    assert "stage" not in str(info.value), (
        f"an error from inside JAX's tracing leaked: {info.value}"
    )
    assert_unchanged(keep, (OBJ, X, V))


def test_generator_not_consumed() -> None:
    """A generator passed where a tensor is expected is rejected without being consumed."""
    calls = [
        lambda g: AF.vjp(lambda a: a, g, V),
        lambda g: AF.jvp(lambda a: a, X, g),
        lambda g: TF.vjp(lambda a: a, g),
        lambda g: TF.jvp(lambda a: a, g, (V,)),
        lambda g: TF.grad(lambda a: a.sum())(g),
        lambda g: TF.vmap(lambda a: a)(g),
    ]
    for call in calls:
        g = (jnp.asarray(X) for _ in range(2))
        with pytest.raises(Exception):  # noqa: B017 - the class is checked differentially
            call(g)
        assert sum(1 for _ in g) == 2, f"{call} consumed the generator"


def test_user_containers_not_mutated_on_success() -> None:
    """dicts/lists passed as primals, cotangents, tangents and v keep their content and order."""
    d = {"b": jnp.asarray(X), "a": jnp.asarray(V)}
    lst = [np.array(X), np.array(V)]
    keep = snapshot((d, lst))
    out, vjp_fn = TF.vjp(lambda p, q: {"z": p["a"] * q[0], "y": p["b"] * q[1]}, d, lst)
    ct = {"z": np.ones(3), "y": np.ones(3)}
    keep_ct = snapshot(ct)
    vjp_fn(ct)
    TF.jvp(lambda p, q: p["a"] * q[1], (d, lst), (d, lst))
    TF.grad(lambda p, q: (p["a"] * q[0]).sum(), argnums=(0, 1))(d, lst)
    jaxfunc.func.jacrev(lambda p: p["a"] * p["b"])(d)
    assert_unchanged(keep, (d, lst))
    assert_unchanged(keep_ct, ct)
    assert list(out) == ["z", "y"]


def test_partial_and_callable_objects_accepted() -> None:
    """Callables that are not functions (partials, objects with __call__) work like functions."""

    class Scale:
        def __call__(self, a: Any) -> Any:
            return a * 3

    p = functools.partial(lambda a, k: a * k, k=3.0)
    for f in (p, Scale()):
        out, (g,) = AF.vjp(f, (jnp.asarray(X),), jnp.ones(3))
        np.testing.assert_allclose(np.asarray(g), 3.0)
        np.testing.assert_allclose(np.asarray(TF.grad(lambda a: f(a).sum())(jnp.asarray(X))), 3.0)
