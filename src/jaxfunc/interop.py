"""Move arrays between torch and JAX through DLPack (zero-copy where the layouts allow).

torch is imported only when these functions are called; jaxfunc does not depend on it.
Containers keep their order (a dict's keys stay in insertion order, as torch code expects
when it zips ``named_parameters()`` with values) and dtypes carry over, with one exception:
while JAX's x64 mode is off, JAX has no 64-bit types, so int64, float64 and complex128
tensors arrive as int32, float32 and complex64 (a copy), and float64/complex128 ones warn
(:class:`jaxfunc.Float64Warning`). Turn x64 on (``jax.config.update("jax_enable_x64",
True)`` at startup) to keep them.

>>> import jax.numpy as jnp
>>> from jaxfunc.interop import from_torch, to_torch  # doctest: +SKIP
>>> x = from_torch(torch.ones(3))                     # doctest: +SKIP
>>> to_torch({"a": jnp.ones(2)})                      # doctest: +SKIP
{'a': tensor([1., 1.])}
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ._warnings import Float64Warning

__all__ = ["from_torch", "to_torch"]


def _torch() -> Any:
    try:
        import torch  # pyright: ignore[reportMissingImports] - optional dependency
    except ImportError as e:  # pragma: no cover - exercised on the leg without torch
        raise ImportError(
            "jaxfunc.interop needs torch: pip install torch (CPU: pip install torch==2.13.0)"
        ) from e
    return torch


def _map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``fn`` on every leaf of ``tree``; built-in containers rebuilt in their own order
    (``jax.tree_util.tree_map`` would sort dict keys), other pytree nodes by JAX."""
    t = type(tree)
    if t is dict or t is collections.OrderedDict:
        return t((k, _map(fn, v)) for k, v in tree.items())
    if t is collections.defaultdict:
        return collections.defaultdict(
            tree.default_factory, ((k, _map(fn, v)) for k, v in tree.items())
        )
    if isinstance(tree, tuple) and hasattr(t, "_fields"):
        return t(*(_map(fn, v) for v in tree))
    if t is tuple or t is list:
        return t(_map(fn, v) for v in tree)
    if tree is None:
        return None
    leaves = jax.tree_util.tree_leaves(tree)
    if len(leaves) == 1 and leaves[0] is tree:
        return fn(tree)
    return jax.tree_util.tree_map(fn, tree)


_WIDE_FLOATS = ("float64", "complex128")


def from_torch(tree: Any) -> Any:
    """torch tensors (any pytree of them) as jax arrays, sharing memory when possible.

    Tensors that require grad are detached (JAX does its own differentiation); a
    non-contiguous tensor is made contiguous first (a copy), as DLPack requires. Dicts keep
    their key order; dtypes are kept (64-bit ones only while x64 is on: see the module
    docstring).
    """
    torch = _torch()
    narrowed: list[str] = []

    def convert(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        t = t.detach()
        if t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg()
        name = str(t.dtype).replace("torch.", "")
        if name in _WIDE_FLOATS and jax.dtypes.canonicalize_dtype(np.dtype(name)) != name:
            narrowed.append(name)
        return jax.dlpack.from_dlpack(t.contiguous())

    out = _map(convert, tree)
    if narrowed:
        warnings.warn(
            f"jaxfunc.interop.from_torch: {narrowed[0]} tensors became "
            f"{'float32' if narrowed[0] == 'float64' else 'complex64'}: JAX's x64 mode is "
            "off. Turn it on at startup with jax.config.update('jax_enable_x64', True) to "
            "keep 64-bit dtypes.",
            Float64Warning,
            stacklevel=2,
        )
    return out


def to_torch(tree: Any) -> Any:
    """jax arrays (any pytree of them) as torch tensors, sharing memory when possible.
    Dicts keep their key order."""
    torch = _torch()

    def convert(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x
        return torch.utils.dlpack.from_dlpack(x)

    return _map(convert, tree)
