"""Move arrays between torch and JAX through DLPack (zero-copy where the layouts allow).

torch is imported only when these functions are called; jaxfunc does not depend on it.

>>> import jax.numpy as jnp
>>> from jaxfunc.interop import from_torch, to_torch  # doctest: +SKIP
>>> x = from_torch(torch.ones(3))                     # doctest: +SKIP
>>> to_torch({"a": jnp.ones(2)})                      # doctest: +SKIP
{'a': tensor([1., 1.])}
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["from_torch", "to_torch"]


def _torch() -> Any:
    try:
        import torch  # pyright: ignore[reportMissingImports] - optional dependency
    except ImportError as e:  # pragma: no cover - exercised on the leg without torch
        raise ImportError(
            "jaxfunc.interop needs torch: pip install torch (CPU: pip install torch==2.13.0)"
        ) from e
    return torch


def from_torch(tree: Any) -> Any:
    """torch tensors (any pytree of them) as jax arrays, sharing memory when possible.

    Tensors that require grad are detached (JAX does its own differentiation); a
    non-contiguous tensor is made contiguous first (a copy), as DLPack requires.
    """
    torch = _torch()

    def convert(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        t = t.detach()
        if t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg()
        return jax.dlpack.from_dlpack(t.contiguous())

    return jax.tree_util.tree_map(convert, tree)


def to_torch(tree: Any) -> Any:
    """jax arrays (any pytree of them) as torch tensors, sharing memory when possible."""
    torch = _torch()

    def convert(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x
        return torch.utils.dlpack.from_dlpack(x)

    return jax.tree_util.tree_map(convert, tree)
