"""``torch.func.vmap`` on ``jax.vmap``: torch's ``in_dims``/``out_dims`` rules, checks and
messages; unbatched outputs broadcast; ``chunk_size`` maps that many elements at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _checks, _compat, _core, _jit, _tree, _warnings


def vmap(
    func: Callable[..., Any],
    in_dims: Any = 0,
    out_dims: Any = 0,
    randomness: str = "error",
    *,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """Vectorizing map with torch's ``in_dims``/``out_dims`` rules and checks.

    Keyword arguments are passed through unbatched; unbatched outputs are broadcast along
    the mapped dimension; ``chunk_size`` maps that many elements at a time.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.vmap(jnp.dot)(jnp.ones((2, 3)), jnp.ones((2, 3)))
    Array([3., 3.], dtype=float32)

    Differences from torch: jnp code has no global RNG (pass ``jax.random`` keys); with
    ``randomness="error"``, a function that draws from numpy's or Python's global RNG gets
    torch's error (its numbers would be the same for every element).
    """
    _checks.check_callable(func, "vmap")
    _checks.check_randomness(randomness)
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @_core.wraps(
        func,
        _VmapTransform(
            in_dims=in_dims, out_dims=out_dims, randomness=randomness, chunk_size=chunk_size
        ),
    )
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flat_dims, batch_size = _check_inputs(func, in_dims, out_dims, args)
        if chunk_size is not None:
            _checks.check_chunk_size_type(chunk_size)
        if randomness == "error":  # (torch raises it when a draw runs: after its checks)
            _warnings.random_error(func)
        arrays, desc = _core.split_arrays((args, kwargs))
        program = _Vmap.of(
            desc=desc,
            flat_dims=_shared_dims(tuple(flat_dims)),
            batch_size=batch_size,
            out_dims=out_dims,
            chunk_size=chunk_size,
        )
        return _core.call(func, program, arrays)

    return wrapper


#: Each ``flat_dims`` tuple once (ints and None, normalized by ``_check_inputs``: equal
#: means the same), so ``_Vmap.of`` finds a repeated call by identity.
_FLAT_DIMS: dict[tuple[int | None, ...], tuple[int | None, ...]] = {}


def _shared_dims(dims: tuple[int | None, ...]) -> tuple[int | None, ...]:
    if len(_FLAT_DIMS) >= 1024:
        _FLAT_DIMS.clear()
    return _FLAT_DIMS.setdefault(dims, dims)


@dataclasses.dataclass(frozen=True, eq=False)
class _VmapTransform(_jit.Transform):
    in_dims: Any
    out_dims: Any
    randomness: str
    chunk_size: int | None


_VmapTransform.make = vmap


def _check_inputs(
    func: Callable[..., Any], in_dims: Any, out_dims: Any, args: tuple[Any, ...]
) -> tuple[list[int | None], int]:
    name = _checks.func_name(func)
    _check_out_dims(func, out_dims)
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(
            f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a "
            "(potentially nested) tuple matching the structure of inputs, got: "
            f"{type(in_dims)}."
        )
    if len(args) == 0:
        raise ValueError(
            f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
            "trying to vmap over a function with no inputs. The latter is unsupported."
        )
    flat_args = _tree.leaves(args)
    flat_dims = _broadcast_prefix(in_dims, args)
    if flat_dims is None:
        raise ValueError(
            f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
            f"structure of `inputs`. in_dims has structure {_tree.treespec_repr(in_dims)} but "
            f"inputs has structure {_tree.treespec_repr(args)}."
        )
    for i, (arg, dim) in enumerate(zip(flat_args, flat_dims)):
        if not isinstance(dim, int) and dim is not None:
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={dim} for an input "
                "but in_dim must be either an integer dimension or None."
            )
        if isinstance(dim, int) and not _checks.is_tensor(arg):
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={dim} for an input "
                f"but the input is of type {type(arg)}. We cannot vmap over non-Tensor "
                "arguments, please use None as the respective in_dim"
            )
        if dim is not None:
            ndim = len(arg.shape)
            if dim < -ndim or dim >= ndim:
                raise ValueError(
                    f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={dim} for some "
                    f"input, but that input is a Tensor of dimensionality {ndim} so expected "
                    f"in_dim to satisfy -{ndim} <= in_dim < {ndim}."
                )
            flat_dims[i] = dim % ndim
    sizes = [arg.shape[d] for arg, d in zip(flat_args, flat_dims) if d is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(
            "vmap: Expected all tensors to have the same size in the mapped dimension, got "
            f"sizes {sizes} for the mapped dimension"
        )
    return flat_dims, sizes[0]


def _broadcast_prefix(prefix: Any, tree: Any) -> list[Any] | None:
    """torch's ``_broadcast_to_and_flatten``: expand an int/None prefix over ``tree``'s leaves."""
    if prefix is None or isinstance(prefix, int):
        return [prefix] * len(_tree.leaves(tree))
    if isinstance(prefix, (tuple, list)):
        if type(prefix) is not type(tree) and not (
            isinstance(prefix, tuple) and isinstance(tree, tuple)
        ):
            return None
        if len(prefix) != len(tree):
            return None
        out: list[Any] = []
        for p, t in zip(prefix, tree):
            sub = _broadcast_prefix(p, t)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if isinstance(prefix, dict):
        if not isinstance(tree, dict) or set(prefix) != set(tree):
            return None
        out = []
        for k in sorted(tree):
            sub = _broadcast_prefix(prefix[k], tree[k])
            if sub is None:
                return None
            out.extend(sub)
        return out
    return [prefix] * len(_tree.leaves(tree))


def _check_out_dims(func: Callable[..., Any], out_dims: Any) -> None:
    if isinstance(out_dims, int):
        return
    for leaf in _tree.leaves(out_dims):
        if leaf is not None and not isinstance(leaf, int):
            raise ValueError(
                f"vmap({_checks.func_name(func)}, ..., out_dims={out_dims}): `out_dims` must be "
                "an int, None or a python collection of ints representing where in the outputs "
                "the vmapped dimension should appear."
            )


@dataclasses.dataclass(frozen=True, eq=False)
class _Vmap(_jit.Program):
    desc: _core.CallDesc
    flat_dims: tuple[int | None, ...]
    batch_size: int
    out_dims: Any
    chunk_size: int | None

    def __call__(self, func: Callable[..., Any], arrays: list[Any]) -> Any:
        return _run(func, self, arrays)


def _run(func: Callable[..., Any], p: _Vmap, arrays: list[Any]) -> Any:
    flat_dims, batch_size, out_dims, chunk_size = (
        p.flat_dims,
        p.batch_size,
        p.out_dims,
        p.chunk_size,
    )
    args, kwargs = _core.merge_arrays(p.desc, arrays)
    flat_args, args_struct = _tree.flatten_structure(args)
    name = _checks.func_name(func)
    mapped = [i for i, d in enumerate(flat_dims) if d is not None]
    in_axes = tuple(d for d in flat_dims if d is not None)
    seen: dict[str, Any] = {}

    def body(*batched: Any) -> list[Any]:
        leaves = list(flat_args)
        for i, b in zip(mapped, batched):
            leaves[i] = b
        out = func(*args_struct.unflatten(leaves), **kwargs)
        flat_out, seen["out"] = _tree.flatten_structure(out)
        dims = _out_dims_for(func, out_dims, out, len(flat_out))
        for o, d in zip(flat_out, dims):
            if d is not None and not _checks.is_tensor(o):
                raise ValueError(
                    f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(o)}. "
                    "Did you mean to set out_dims= to None for output?"
                )
            if d is not None and not -(o.ndim + 1) <= d <= o.ndim:
                raise IndexError(
                    "Dimension out of range (expected to be in range of "
                    f"[{-(o.ndim + 1)}, {o.ndim}], but got {d})"
                )
        seen["dims"] = dims
        return [_checks.to_array(o) if _checks.is_tensor(o) else o for o in flat_out]

    def run(batched: list[Any]) -> list[Any]:
        # Trace once to learn the output structure (and check it), then map for real.
        try:
            jax.eval_shape(jax.vmap(body, in_axes=in_axes, out_axes=0), *batched)
        except _compat.CONCRETIZATION_ERRORS as e:
            if not eager:  # a value of the user's own trace, or of the cache's: not ours
                raise
            raise RuntimeError(_data_dependent_message(e)) from e
        try:
            return jax.vmap(body, in_axes=in_axes, out_axes=list(seen["dims"]))(*batched)
        except ValueError as e:
            if "got axis spec None but output was batched" not in str(e):
                raise
            raise ValueError(
                f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None"
            ) from None

    # Called eagerly, only vmap's own batched values can be abstract: torch's error names them.
    eager = _compat.at_top_level() and not _jit.tracing()
    batched = [flat_args[i] for i in mapped]
    if chunk_size is None or chunk_size >= batch_size:
        flat_out = run(batched)
        return seen["out"].unflatten(flat_out)
    parts = []
    for start in range(0, batch_size, chunk_size):
        stop = min(start + chunk_size, batch_size)
        parts.append(
            run([jax.lax.slice_in_dim(b, start, stop, axis=d) for b, d in zip(batched, in_axes)])
        )
    flat_out = [
        cols[0] if d is None else jnp.concatenate(cols, axis=d % jnp.ndim(cols[0]))
        for cols, d in zip(zip(*parts), seen["dims"])
    ]
    return seen["out"].unflatten(flat_out)


def _data_dependent_message(error: Exception) -> str:
    if isinstance(error, jax.errors.TracerBoolConversionError):
        return (
            "vmap: It looks like you're attempting to use a Tensor in some data-dependent "
            "control flow. We don't support that yet, please file an issue at "
            "https://github.com/pytorch/pytorch/issues ."
        )
    return (
        "vmap: It looks like you're calling .item() on a Tensor. We don't support vmap over "
        "calling .item() on a Tensor, please try to rewrite what you're doing with other "
        "operations. If error is occurring somewhere inside PyTorch internals, please file a "
        "bug report."
    )


def _out_dims_for(func: Callable[..., Any], out_dims: Any, out: Any, n: int) -> list[Any]:
    name = _checks.func_name(func)

    def incompatible() -> ValueError:
        return ValueError(
            f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with "
            f"the structure of `outputs`. out_dims has structure {_tree.treespec_repr(out_dims)} "
            f"but outputs has structure {_tree.treespec_repr(out)}."
        )

    if _checks.is_tensor(out) or not isinstance(out, (tuple, list, dict)):
        if isinstance(out_dims, int) or out_dims is None:
            return [out_dims]
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            return list(out_dims)
        raise incompatible()
    dims = _broadcast_prefix(out_dims, out)
    if dims is None or len(dims) != n:
        raise incompatible()
    return dims
