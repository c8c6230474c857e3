"""Run one test body on torch and on jaxfunc, and compare what comes back.

A case is a function of a *side*: ``case(s)`` builds its inputs with ``s.t(...)`` and
``s.ones(...)``, writes the math with ``s.sin``/``s.sum``/operators, and calls the
transforms through ``s.TF`` (torch.func / jaxfunc.func) and ``s.AF``
(torch.autograd.functional / jaxfunc.autograd.functional). ``outcome(case, side)`` runs it
and turns the result into plain data: nested containers with their types and dict key order,
arrays as numpy with a dtype name, exceptions as (class name, message). Two outcomes are then
compared with ``assert_same``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import torch
    import torch.autograd.functional as torch_af
    import torch.func as torch_func

    HAVE_TORCH = True
except ImportError:  # pragma: no cover - the second CI leg has no torch
    HAVE_TORCH = False

import jax
import jax.numpy as jnp

import jaxfunc
import jaxfunc.autograd.functional as jax_af
import jaxfunc.func as jax_func


class JaxSide:
    name = "jaxfunc"
    TF = jax_func
    AF = jax_af

    def __init__(self, float_dtype: str = "float64") -> None:
        self.float = float_dtype

    def t(self, data: Any, dtype: str | None = None) -> Any:
        arr = np.asarray(data)
        if dtype is None:
            dtype = (
                self.float
                if arr.dtype.kind == "f"
                else ("complex128" if arr.dtype.kind == "c" else str(arr.dtype))
            )
        return jnp.asarray(arr, dtype=dtype)

    def ones(self, *shape: int, dtype: str | None = None) -> Any:
        return jnp.ones(shape, dtype or self.float)

    def zeros(self, *shape: int, dtype: str | None = None) -> Any:
        return jnp.zeros(shape, dtype or self.float)

    def eye(self, n: int) -> Any:
        return jnp.eye(n, dtype=self.float)

    def no_grad(self) -> Any:
        return jaxfunc.no_grad()

    def enable_grad(self) -> Any:
        return jaxfunc.enable_grad()

    def detach(self, x: Any) -> Any:
        return jax.lax.stop_gradient(x)

    def long(self, x: Any) -> Any:
        return x.astype(jnp.int64)

    def double(self, x: Any) -> Any:
        return x.astype(jnp.float64)

    def float32(self, x: Any) -> Any:
        return x.astype(jnp.float32)

    def sum(self, x: Any, dim: Any = None) -> Any:
        return jnp.sum(x, axis=dim)

    def stack(self, xs: Any, dim: int = 0) -> Any:
        return jnp.stack(xs, axis=dim)

    def cat(self, xs: Any, dim: int = 0) -> Any:
        return jnp.concatenate(xs, axis=dim)

    def where(self, c: Any, a: Any, b: Any) -> Any:
        return jnp.where(c, a, b)

    def __getattr__(self, name: str) -> Any:
        # sin, cos, exp, log, sqrt, tanh, abs, floor, sign, conj, real, imag, matmul, dot, mul
        return {"mul": jnp.multiply, "pow": jnp.power}.get(name) or getattr(jnp, name)


class TorchSide:
    name = "torch"

    def __init__(self, float_dtype: str = "float64") -> None:
        self.float = float_dtype
        self.TF = torch_func
        self.AF = torch_af

    def _dtype(self, name: str) -> Any:
        return getattr(torch, name)

    def t(self, data: Any, dtype: str | None = None) -> Any:
        arr = np.asarray(data)
        if dtype is None:
            dtype = (
                self.float
                if arr.dtype.kind == "f"
                else ("complex128" if arr.dtype.kind == "c" else str(arr.dtype))
            )
        return torch.tensor(arr, dtype=self._dtype(dtype))

    def ones(self, *shape: int, dtype: str | None = None) -> Any:
        return torch.ones(shape, dtype=self._dtype(dtype or self.float))

    def zeros(self, *shape: int, dtype: str | None = None) -> Any:
        return torch.zeros(shape, dtype=self._dtype(dtype or self.float))

    def eye(self, n: int) -> Any:
        return torch.eye(n, dtype=self._dtype(self.float))

    def no_grad(self) -> Any:
        return torch.no_grad()

    def enable_grad(self) -> Any:
        return torch.enable_grad()

    def detach(self, x: Any) -> Any:
        return x.detach()

    def long(self, x: Any) -> Any:
        return x.long()

    def double(self, x: Any) -> Any:
        return x.double()

    def float32(self, x: Any) -> Any:
        return x.float()

    def sum(self, x: Any, dim: Any = None) -> Any:
        return x.sum() if dim is None else x.sum(dim=dim)

    def stack(self, xs: Any, dim: int = 0) -> Any:
        return torch.stack(list(xs), dim=dim)

    def cat(self, xs: Any, dim: int = 0) -> Any:
        return torch.cat(list(xs), dim=dim)

    def where(self, c: Any, a: Any, b: Any) -> Any:
        return torch.where(c, a, b)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


# -- outcomes -----------------------------------------------------------------------------


@dataclass
class Raised:
    cls: str
    message: str


def _plain(r: Any) -> Any:
    """Results as comparable plain data."""
    if HAVE_TORCH and isinstance(r, torch.Tensor):
        arr = r.detach().resolve_conj().resolve_neg().numpy()
        return ("array", str(arr.dtype), arr.shape, arr)
    if isinstance(r, (jax.Array, np.ndarray)):
        arr = np.asarray(r)
        return ("array", str(arr.dtype), arr.shape, arr)
    if isinstance(r, tuple):
        return ("tuple", [_plain(x) for x in r])
    if isinstance(r, list):
        return ("list", [_plain(x) for x in r])
    if isinstance(r, dict):
        return ("dict", [(k, _plain(v)) for k, v in r.items()])
    if callable(r):
        return ("callable",)
    if isinstance(r, (bool, int, float, complex, str, type(None))):
        return ("py", r)
    if HAVE_TORCH and isinstance(r, (torch.Size,)):
        return ("py", tuple(r))
    if HAVE_TORCH and isinstance(r, torch.dtype):
        return ("dtype", str(r).replace("torch.", ""))
    if isinstance(r, np.dtype) or (hasattr(r, "dtype") and hasattr(r, "kind")):
        return ("dtype", str(np.dtype(r)))
    return ("other", repr(r))


def outcome(case: Callable[[Any], Any], side: Any) -> Any:
    try:
        with _quiet():
            return _plain(case(side))
    except Exception as e:
        return Raised(type(e).__name__, str(e))


@contextlib.contextmanager
def _quiet() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def assert_same(
    got: Any,
    want: Any,
    *,
    messages: bool = True,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    path: str = "result",
) -> None:
    """Compare two outcomes: exception class (and message), structure, dtype, shape, values."""
    if isinstance(want, Raised) or isinstance(got, Raised):
        assert isinstance(got, Raised) and isinstance(want, Raised), (
            f"{path}: torch gave {want!r}, jaxfunc gave {got!r}"
        )
        assert got.cls == want.cls, (
            f"{path}: exception {got.cls} ({got.message}) != torch {want.cls} ({want.message})"
        )
        if messages:
            assert got.message == want.message, (
                f"{path}: message differs\n  jaxfunc: {got.message}\n  torch:   {want.message}"
            )
        return
    kind = want[0]
    assert got[0] == kind, f"{path}: jaxfunc gave {got[0]}, torch {kind}"
    if kind == "array":
        _, wdt, wshape, warr = want
        _, gdt, gshape, garr = got
        assert gdt == wdt, f"{path}: dtype {gdt} != torch {wdt}"
        assert gshape == wshape, f"{path}: shape {gshape} != torch {wshape}"
        np.testing.assert_allclose(garr, warr, rtol=rtol, atol=atol, err_msg=path, equal_nan=True)
    elif kind in ("tuple", "list"):
        assert len(got[1]) == len(want[1]), f"{path}: {kind} of {len(got[1])} != {len(want[1])}"
        for i, (g, w) in enumerate(zip(got[1], want[1])):
            assert_same(g, w, messages=messages, rtol=rtol, atol=atol, path=f"{path}[{i}]")
    elif kind == "dict":
        gk = [k for k, _ in got[1]]
        wk = [k for k, _ in want[1]]
        assert gk == wk, f"{path}: dict keys {gk} != torch {wk}"
        for (k, g), (_, w) in zip(got[1], want[1]):
            assert_same(g, w, messages=messages, rtol=rtol, atol=atol, path=f"{path}[{k!r}]")
    else:
        assert got == want, f"{path}: {got} != torch {want}"
