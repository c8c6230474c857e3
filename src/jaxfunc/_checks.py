"""Argument checks with torch's exception classes and torch's message text.

Everything here runs before any JAX work, on concrete Python values or on abstract values
(shape and dtype) while tracing. Messages are torch 2.13's, so code that catches
``RuntimeError`` or searches for the text keeps working.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _compat, _tree, _warnings


def is_tensor(x: Any) -> bool:
    """jaxfunc's 'Tensor': a jax.Array (tracers included) or a numpy ndarray. A torch.Tensor
    is an error that says how to convert it (it is not accepted silently: the results would
    come back as jax arrays, and a CUDA tensor would move)."""
    if type(x) is _compat.ArrayImpl or isinstance(x, (jax.Array, np.ndarray)):
        return True
    if type(x).__module__[:5] == "torch" and isinstance(x, sys.modules["torch"].Tensor):
        raise TypeError(
            "jaxfunc transforms take jax arrays (or numpy arrays), got a "
            f"{type(x).__module__}.{type(x).__name__}: convert it with "
            "jaxfunc.interop.from_torch(tensor) (zero-copy through DLPack where it can), and "
            "results back with jaxfunc.interop.to_torch(...)."
        )
    return False


_WIDE = frozenset({np.dtype("float64"), np.dtype("complex128")})


def to_array(x: Any) -> Any:
    """numpy arrays enter as jax arrays; jax arrays and tracers pass through untouched."""
    if type(x) is not np.ndarray:
        return x
    if x.dtype == object:
        raise TypeError(
            "A numpy array of dtype object cannot be used as a Tensor: convert it to a "
            "numeric dtype first (e.g. arr.astype(float))."
        )
    if x.dtype in _WIDE and jax.dtypes.canonicalize_dtype(x.dtype) != x.dtype:
        _warnings.pending_float64.append(x.dtype)  # x64 is off: reported once per function
    return jnp.asarray(x)


class _DtypeIs(dict):
    """``dtype -> bool``: is it a subdtype of ``kind``, computed once per dtype (a lookup
    in C after that)."""

    def __init__(self, kind: Any) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, dtype: Any) -> bool:
        r = self[dtype] = bool(jnp.issubdtype(dtype, self.kind))
        return r


INEXACT = _DtypeIs(jnp.inexact)
_COMPLEX = _DtypeIs(jnp.complexfloating)


def is_inexact(x: Any) -> bool:
    return INEXACT[x.dtype]


def is_complex(x: Any) -> bool:
    return _COMPLEX[x.dtype]


def check_forward_primal(x: Any, what: str = "primal") -> None:
    """Forward mode's dtype rule (torch's ``make_dual``)."""
    if not is_inexact(x):
        raise ValueError(
            f"Expected {what} to be floating point or complex, but got: {torch_dtype(x.dtype)}"
        )


def check_implicit_ones(shape: tuple[int, ...], dtype: Any) -> None:
    """torch creates an implicit ``ones`` gradient only for one-element real outputs."""
    if numel(shape) != 1:
        raise RuntimeError("grad can be implicitly created only for scalar outputs")
    check_real_implicit_grad(dtype)


def check_real_implicit_grad(dtype: Any) -> None:
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise RuntimeError(
            "grad can be implicitly created only for real scalar outputs but got "
            f"{torch_dtype(dtype)}"
        )


def torch_dtype(dtype: Any) -> str:
    """``torch.float64`` for float64, the way torch prints a dtype."""
    return "torch." + np.dtype(dtype).name


def torch_size(shape: tuple[int, ...]) -> str:
    return f"torch.Size({list(shape)})"


def numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


# -- torch.autograd.functional ---------------------------------------------------------------


def as_tuple(value: Any, arg_name: str, fn_name: str) -> tuple[bool, tuple[Any, ...]]:
    """torch's ``_as_tuple``: a tuple stays one, anything else is wrapped; all must be tensors."""
    is_tuple = isinstance(value, tuple)
    items = value if is_tuple else (value,)
    for i, el in enumerate(items):
        if not is_tensor(el):
            where = f"value at index {i}" if is_tuple else f"given {arg_name}"
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of "
                f"Tensors but the {where} has type {type(el)}."
            )
    return is_tuple, tuple(items)


def require_grad_dtypes(xs: Any) -> None:
    """torch's ``requires_grad_()`` rule: only floating point and complex tensors."""
    flat = xs if type(xs) in (tuple, list) and all(map(is_tensor, xs)) else _tree.leaves(xs)
    for x in flat:
        if not is_inexact(x):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")


def validate_v(v: tuple[Any, ...], other: tuple[Any, ...], is_other_tuple: bool) -> None:
    """torch's ``_validate_v``: same count and same sizes; no broadcasting, dtype not checked."""
    if len(other) != len(v):
        if is_other_tuple:
            raise RuntimeError(
                f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}."
            )
        raise RuntimeError("The given v should contain a single Tensor.")
    for idx, (el_v, el_other) in enumerate(zip(v, other)):
        if tuple(el_v.shape) != tuple(el_other.shape):
            prepend = f"Entry {idx} in " if is_other_tuple else ""
            raise RuntimeError(
                f"{prepend}v has invalid size: should be {torch_size(el_other.shape)} but got "
                f"{torch_size(el_v.shape)}."
            )


def complex_mismatch_message(grad_dtype: Any, out_dtype: Any, index: int) -> str:
    return (
        "For complex Tensors, both grad_output and output are required to have the same dtype. "
        f"Mismatch in dtype: grad_output[{index}] has a dtype of {torch_dtype(grad_dtype)} and "
        f"output[{index}] has a dtype of {torch_dtype(out_dtype)}."
    )


def cast_like(value: Any, ref_dtype: Any, index: int) -> Any:
    """Cast a cotangent (or ``v``) to its output's dtype the way torch's autograd does.

    Real-for-real and integer-for-anything-real are cast; a complex/real mismatch is
    torch's RuntimeError.
    """
    vd, rd = np.dtype(value.dtype), np.dtype(ref_dtype)
    if vd == rd:
        return value
    v_complex = jnp.issubdtype(vd, jnp.complexfloating)
    r_complex = jnp.issubdtype(rd, jnp.complexfloating)
    if v_complex != r_complex:
        raise RuntimeError(complex_mismatch_message(vd, rd, index))
    return jnp.asarray(value).astype(rd)


# -- torch.func -----------------------------------------------------------------------------


def check_primal_leaves(tree: Any) -> None:
    """torch.func reverse-mode primals: tensors (ValueError), floating point (RuntimeError)."""
    if type(tree) is _compat.ArrayImpl and is_inexact(tree):  # the common case
        return
    flat = _tree.leaves(tree)
    for leaf in flat:
        if not is_tensor(leaf):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(leaf)}")
    require_grad_dtypes(flat)


def check_aux(aux: Any) -> None:
    for leaf in _tree.leaves(aux):
        if not is_tensor(leaf):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(leaf)}")


def check_nonempty_tensor_output(flat: list[Any], api: str) -> None:
    """torch's ``assert_non_empty_tensor_output``."""
    if (len(flat) == 1 and flat[0] is None) or len(flat) < 1:
        shown = "[None]" if flat else "[]"
        raise RuntimeError(
            f"{api}: Expected f to be a function that has non-empty output (got output = {shown})"
        )
    for o in flat:
        if not is_tensor(o):
            raise RuntimeError(
                f"{api}: expected f(*primals) to return only tensors, got unsupported type "
                f"{type(o)}"
            )


def check_has_aux_output(out: Any, api: str) -> tuple[Any, Any]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(
            f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True"
        )
    return out


def check_real(name: str, tree: Any, is_input: bool) -> None:
    """jacrev/jacfwd refuse complex tensors (torch's ``error_if_complex``)."""
    for idx, leaf in enumerate(_tree.leaves(tree)):
        if is_tensor(leaf) and is_complex(leaf):
            kind = "inputs" if is_input else "outputs"
            raise RuntimeError(
                f"{name}: Expected all {kind} to be real but received complex tensor at "
                f"flattened input idx: {idx}"
            )


# -- argnums --------------------------------------------------------------------------------


def _wrap_argnum(argnum: Any, num_args: int) -> int:
    if not isinstance(argnum, int):
        raise RuntimeError(f"argnum must be int, got: {type(argnum)}")
    if 0 <= argnum < num_args:
        return argnum
    if -num_args <= argnum < 0:
        return argnum + num_args
    raise RuntimeError(f"Got argnum={argnum}, but only {num_args} positional inputs")


def normalize_argnums(argnums: Any, num_args: int) -> int | tuple[int, ...]:
    """torch's argnums rules: int or tuple of ints, in range, non-empty, unique after wrapping."""
    if isinstance(argnums, int):
        return _wrap_argnum(argnums, num_args)
    if isinstance(argnums, tuple):
        wrapped = tuple(_wrap_argnum(a, num_args) for a in argnums)
        if len(wrapped) == 0:
            raise RuntimeError("argnums must be non-empty")
        if len(set(wrapped)) != len(wrapped):
            raise RuntimeError(f"argnums elements must be unique, got {wrapped}")
        return wrapped
    raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")


def slice_argnums(args: tuple[Any, ...], argnums: int | tuple[int, ...]) -> Any:
    if isinstance(argnums, int):
        return args[argnums]
    return tuple(args[i] for i in argnums)


def replace_argnums(args: tuple[Any, ...], argnums: int | tuple[int, ...], new: Any) -> tuple:
    if isinstance(argnums, int):
        return tuple(new if i == argnums else a for i, a in enumerate(args))
    pos = {a: k for k, a in enumerate(argnums)}
    return tuple(new[pos[i]] if i in pos else a for i, a in enumerate(args))


def check_randomness(randomness: Any) -> None:
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            "Only allowed values for randomness are 'error', 'different', or 'same'. "
            f"Got {randomness}"
        )


def check_chunk_size_type(chunk_size: Any) -> None:
    """torch splits the batch with a list repeated ``chunk_size`` times: a non-int fails
    there, with Python's message."""
    if not isinstance(chunk_size, int):
        raise TypeError(f"can't multiply sequence by non-int of type '{type(chunk_size).__name__}'")


def func_name(func: Any) -> str:
    """How torch names a function in messages (``_get_name``)."""
    if hasattr(func, "__name__"):
        return func.__name__
    import functools

    if isinstance(func, functools.partial):
        return f"functools.partial({func_name(func.func)}, ...)"
    return repr(func)


def check_callable(func: Any, api: str) -> None:
    if not callable(func):
        raise TypeError(f"{api}: expected `func` to be callable, got {type(func)}")


def torch_error(error: BaseException) -> BaseException | None:
    """The error torch would raise in place of JAX's ``error``, or None to keep it: JAX's
    error for committed arrays on two devices becomes torch's RuntimeError for tensors on
    two devices; a torch method called on a jax array gets what JAX writes instead."""
    if type(error) is AttributeError:
        return _torch_method_hint(error)
    if _compat.is_device_mismatch(error):
        first_line = str(error).split("\n")[0]
        return RuntimeError(
            "Expected all tensors to be on the same device, but found at least two "
            f"devices: {first_line}"
        )
    return None


# torch Tensor methods jax arrays lack, and what a port writes instead
_TORCH_METHODS = {
    "detach": "jax.lax.stop_gradient(x) (inside a transform; outside, an array needs none)",
    "unsqueeze": "jnp.expand_dims(x, dim) or x[None]",
    "view": "x.reshape(...)",
    "numpy": "np.asarray(x)",
    "clone": "x itself (jax arrays are immutable)",
    "cpu": "jax.device_get(x)",
    "dim": "x.ndim",
    "requires_grad_": "nothing: jaxfunc differentiates the arguments argnums names",
}


def _torch_method_hint(error: Any) -> BaseException | None:
    """``x.detach()`` on a jax array: the same AttributeError, saying what JAX writes."""
    name = getattr(error, "name", None)
    hint = _TORCH_METHODS.get(name) if isinstance(name, str) else None
    if hint is None or not isinstance(getattr(error, "obj", None), jax.Array):
        return None
    return AttributeError(f"{error}. jax arrays have no torch method .{name}(): write {hint}")
