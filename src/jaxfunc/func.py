"""``torch.func`` on JAX: swap ``torch.func`` for ``jaxfunc.func``, keep the calls.

Each function checks its arguments the way torch does (same exception class, same
message), then hands a *program* (the whole JAX mapping of the transform) to the compile
cache, which runs it compiled or eagerly. See ``_core`` for the data flow.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp

from . import _checks, _compat, _core, _grad_mode, _jit, _strict, _tree, _warnings
from ._core import VjpFn as VjpFn
from ._modules import functional_call as functional_call
from ._modules import named_buffers as named_buffers
from ._modules import named_parameters as named_parameters
from ._modules import stack_module_state as stack_module_state
from ._vmap import vmap as vmap

__all__ = [
    "JvpFn",
    "VjpFn",
    "functional_call",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "named_buffers",
    "named_parameters",
    "stack_module_state",
    "vjp",
    "vmap",
]

_VJP = "vjp(f, *primals)"
_JVP = "jvp(f, primals, tangents)"
_GRAD = "grad_and_value(f)(*args)"
_LINEARIZE = "linearize(f, *primals)"


def _flat_fn(
    func: Callable[..., Any],
    call_args: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    api: str,
    has_aux: bool,
    seen: dict[str, Any],
    check: Callable[[list[Any]], None] | None = None,
) -> Callable[..., tuple[list[Any], Any]]:
    """``func`` as the core's flat function ``fn(*arrays) -> (outputs, aux)``, with torch's
    output checks (``api`` prefixes the messages). The output and aux structures are noted
    in ``seen`` (``"out"``, ``"aux"``); ``check`` adds a transform's own output rule."""

    def fn(*flat: Any) -> tuple[list[Any], Any]:
        out, aux = _split_aux(func(*call_args(flat)), has_aux, api)
        if has_aux:
            aux = _flat_aux(aux, seen)
        flat_out, seen["out"] = _tree.flatten_structure(out)
        _checks.check_nonempty_tensor_output(flat_out, api)
        if check is not None:
            check(flat_out)
        return [_checks.to_array(o) for o in flat_out], aux

    return fn


def _split_aux(out: Any, has_aux: bool, api: str) -> tuple[Any, Any]:
    """``(output, aux)`` of a ``has_aux`` function's result; ``(out, None)`` without."""
    return _checks.check_has_aux_output(out, api) if has_aux else (out, None)


def _flat_aux(aux: Any, seen: dict[str, Any]) -> list[Any]:
    """aux checked (tensors only) and flattened; its structure is noted in ``seen["aux"]``."""
    _checks.check_aux(aux)
    aux_flat, seen["aux"] = _tree.flatten_structure(aux)
    return [_checks.to_array(a) for a in aux_flat]


def _with_aux(result: Any, has_aux: bool, seen: dict[str, Any], aux: Any) -> Any:
    """Append ``aux`` (in the user's structure) to a result tuple, or pair it with a value."""
    if not has_aux:
        return result
    aux = seen["aux"].unflatten(aux)
    return (*result, aux) if isinstance(result, tuple) else (result, aux)


def _floating_outputs(flat_out: list[Any]) -> None:
    for o in flat_out:
        if not _checks.is_inexact(o):
            raise RuntimeError(
                "vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got "
                f"Tensor with dtype {_checks.torch_dtype(o.dtype)}"
            )


# -- vjp ----------------------------------------------------------------------------------------


@overload
def vjp(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False
) -> tuple[Any, _core.VjpFn]: ...
@overload
def vjp(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[True]
) -> tuple[Any, _core.VjpFn, Any]: ...
def vjp(func: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Vector-Jacobian product: ``(output, vjp_fn)``, or ``(output, vjp_fn, aux)``.

    ``vjp_fn(cotangents)`` returns a tuple with one entry per primal. Primals and outputs may
    be pytrees (tuples, lists, dicts) of arrays.

    >>> import jax.numpy as jnp, jaxfunc
    >>> x = jnp.arange(3.0)
    >>> out, vjp_fn = jaxfunc.func.vjp(lambda x: jnp.sin(x).sum(), x)
    >>> vjp_fn(jnp.asarray(1.0))[0]
    Array([ 1.        ,  0.5403023 , -0.41614684], dtype=float32)

    Differences from torch: ``vjp_fn`` is a JAX pytree (it crosses ``jax.jit`` and maps with
    ``jax.vmap``); numpy arrays are accepted as primals.
    """
    _checks.check_callable(func, "vjp")
    if all(type(p) is _compat.ArrayImpl and _checks.is_inexact(p) for p in primals):
        program = _Vjp.of(in_structures=_leaf_structures(len(primals)), has_aux=has_aux)
        return _core.call(func, program, list(primals))  # the common case: arrays
    _checks.check_primal_leaves(primals)
    flats = [_tree.flatten_structure(p) for p in primals]
    arrays = [_checks.to_array(x) for flat, _ in flats for x in flat]
    program = _Vjp.of(in_structures=tuple(s for _, s in flats), has_aux=has_aux)
    return _core.call(func, program, arrays)


_LEAF_STRUCTURES: dict[int, tuple[_tree.Structure, ...]] = {}


def _leaf_structures(n: int) -> tuple[_tree.Structure, ...]:
    """``(LEAF,) * n``, the same tuple each time (``Program.of`` then knows it at a glance)."""
    found = _LEAF_STRUCTURES.get(n)
    if found is None:
        found = _LEAF_STRUCTURES[n] = (_tree.LEAF,) * n
    return found


def _unflatten_args(structures: tuple[_tree.Structure, ...], flat: Any) -> tuple[Any, ...]:
    out, start = [], 0
    for s in structures:
        out.append(s.unflatten(list(flat[start : start + s.num_leaves])))
        start += s.num_leaves
    return tuple(out)


def _save_real_dots(prim: Any, *avals: Any, **params: Any) -> bool:
    """Remat policy: keep the results of real matrix products without batch dimensions
    (JAX's ``dots_with_no_batch_dims_saveable``, less complex dots: saving a complex
    residual fails in jax.checkpoint, which rounds residuals with a real-only primitive)."""
    if prim is not jax.lax.dot_general_p:
        return False
    (_, _), (lhs_batch, rhs_batch) = params["dimension_numbers"]
    return not lhs_batch and not rhs_batch and not any(jnp.iscomplexobj(a) for a in avals)


@dataclasses.dataclass(frozen=True, eq=False)
class _Vjp(_jit.Program):
    in_structures: tuple[_tree.Structure, ...]
    has_aux: bool

    def __call__(self, func: Callable[..., Any], arrays: list[Any]) -> tuple[Any, ...]:
        seen: dict[str, Any] = {}
        unflatten = functools.partial(_unflatten_args, self.in_structures)
        fn = _flat_fn(func, unflatten, _VJP, self.has_aux, seen, _floating_outputs)
        if _grad_mode.inside_no_grad():
            # torch runs the backward where vjp_fn is called: outside this block, the
            # pullback's own arithmetic is differentiable for an enclosing transform.
            out, aux = fn(*arrays)
            pullback: Any = jax.tree_util.Partial(_Repull(fn), *arrays)
            compiled = False
        else:
            # Compiled, the residuals cross a jit boundary to reach the backward: storing
            # every intermediate costs memory traffic that recomputing cheap operations
            # does not (2x faster at N=1e6, elementwise). Results of matrix products are kept.
            compiled = _jit.tracing()
            out, pullback, aux = _core.reverse(fn, arrays, _save_real_dots if compiled else None)
        out_avals = tuple((tuple(o.shape), o.dtype) for o in out)
        vjp_fn = _core.VjpFn.from_pullback(
            pullback, seen["out"], out_avals, self.in_structures, compiled
        )
        return _with_aux((seen["out"].unflatten(out), vjp_fn), self.has_aux, seen, aux)


class _Repull:
    """A pullback that linearizes ``fn`` when it is applied (``vjp_fn`` of a ``vjp`` taken
    inside ``no_grad``); equal to another for the same ``fn``, so ``vjp_fn`` stays a pytree."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *primals_and_cts: Any) -> Any:
        *primals, cts = primals_and_cts
        return _core.reverse(self.fn, primals)[1](cts)


# -- jvp ----------------------------------------------------------------------------------------


def _check_jvp_pair(primal: Any, tangent: Any) -> Any:
    """torch's ``make_dual`` checks, in torch's order; returns the tangent cast to the primal."""
    _checks.check_forward_primal(primal, "primal")
    _checks.check_forward_primal(tangent, "tangent")
    if tuple(tangent.shape) != tuple(primal.shape):
        raise RuntimeError(
            "Trying to set a forward gradient that has a different size than that of the "
            "original Tensor, this is not supported. Tensor is of size "
            f"{list(primal.shape)} while the given forward gradient is of size "
            f"{list(tangent.shape)}."
        )
    tangent = _checks.to_array(tangent)
    if _checks.is_complex(tangent) and not _checks.is_complex(primal):
        warnings.warn(
            "Casting complex values to real discards the imaginary part", UserWarning, stacklevel=4
        )
        tangent = jnp.real(tangent)
    return tangent.astype(primal.dtype) if tangent.dtype != primal.dtype else tangent


def _jvp_inputs(primals: Any, tangents: Any) -> tuple[list[Any], list[Any], _tree.Structure]:
    """Validate torch.func.jvp's primals/tangents; returns flat primals and cast tangents."""
    if not isinstance(primals, tuple):
        raise RuntimeError(
            f"{_JVP}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals)."
        )
    flat_p, p_struct = _tree.flatten_structure(primals)
    flat_t, t_struct = _tree.flatten_structure(tangents)
    if not _tree.matches(p_struct, t_struct):
        raise RuntimeError(
            f"{_JVP}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
            f"with structure {_tree.treespec_repr(primals)} and tangents with structure "
            f"{_tree.treespec_repr(tangents)}"
        )
    for name, flat in (("primals", flat_p), ("tangents", flat_t)):
        if not flat:
            raise RuntimeError(f"{_JVP}: Expected {name} to contain at least one Tensor.")
        for leaf in flat:
            if not _checks.is_tensor(leaf):
                raise RuntimeError(
                    f"{_JVP}: Expected {name} to only contain Tensors, got {type(leaf)}"
                )
    cast = [_check_jvp_pair(p, t) for p, t in zip(flat_p, flat_t)]
    return [_checks.to_array(p) for p in flat_p], cast, p_struct


@overload
def jvp(
    func: Callable[..., Any],
    primals: Any,
    tangents: Any,
    *,
    strict: bool = False,
    has_aux: Literal[False] = False,
) -> tuple[Any, Any]: ...
@overload
def jvp(
    func: Callable[..., Any],
    primals: Any,
    tangents: Any,
    *,
    strict: bool = False,
    has_aux: Literal[True],
) -> tuple[Any, Any, Any]: ...
def jvp(
    func: Callable[..., Any],
    primals: Any,
    tangents: Any,
    *,
    strict: bool = False,
    has_aux: bool = False,
) -> tuple[Any, ...]:
    """Jacobian-vector product (forward mode): ``(output, jvp_out)`` or with ``aux``.

    ``primals`` must be a tuple (``func(*primals)``); ``tangents`` the same structure.

    >>> import jax.numpy as jnp, jaxfunc
    >>> x = jnp.asarray(2.0)
    >>> jaxfunc.func.jvp(lambda x: x * jnp.array([1.0, 2.0, 3.0]), (x,), (jnp.asarray(1.0),))
    (Array([2., 4., 6.], dtype=float32), Array([1., 2., 3.], dtype=float32))

    Differences from torch: ``no_grad`` blocks are ignored, as torch's forward AD does.
    """
    _checks.check_callable(func, "jvp")
    flat_p, flat_t, struct = _jvp_inputs(primals, tangents)
    program = _Jvp.of(structure=struct, strict=strict, has_aux=has_aux)
    return _core.call(func, program, (flat_p, flat_t))


@dataclasses.dataclass(frozen=True, eq=False)
class _Jvp(_jit.Program):
    structure: _tree.Structure
    strict: bool
    has_aux: bool

    def __call__(self, func: Callable[..., Any], arrays: Any) -> tuple[Any, ...]:
        flat_p, flat_t = arrays
        seen: dict[str, Any] = {}
        unflatten = lambda flat: self.structure.unflatten(list(flat))
        fn = _flat_fn(func, unflatten, _JVP, self.has_aux, seen)
        if self.strict:
            deps = _strict.output_dependencies(lambda *p: fn(*p)[0], flat_p, honor_no_grad=False)
            if any(d == 0 for d in deps):
                raise RuntimeError(
                    "jvp(f, primals, tangents, strict=True): The output of f is independent of "
                    "the inputs. This is not allowed with strict=True."
                )
        out, tan, aux = _core.forward(fn, flat_p, flat_t, honor_no_grad=False)
        result = (seen["out"].unflatten(out), seen["out"].unflatten(tan))
        return _with_aux(result, self.has_aux, seen, aux)


# -- grad / grad_and_value -------------------------------------------------------------------


@overload
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False
) -> Callable[..., tuple[Any, Any]]: ...
@overload
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True]
) -> Callable[..., tuple[Any, tuple[Any, Any]]]: ...
@overload
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...], has_aux: Literal[True]
) -> Callable[..., tuple[Any, tuple[Any, Any]]]: ...
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Gradient and value of a scalar function: ``(grad, value)`` or ``(grad, (value, aux))``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.grad_and_value(lambda x: (x ** 2).sum())(jnp.arange(3.0))
    (Array([0., 2., 4.], dtype=float32), Array(5., dtype=float32))
    """
    _checks.check_callable(func, "grad_and_value")

    @_core.wraps(func, _GradAndValueTransform(argnums=argnums, has_aux=has_aux))
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _grad_call(func, argnums, has_aux, args, kwargs, with_value=True)

    return wrapper


@overload
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False
) -> Callable[..., Any]: ...
@overload
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True]
) -> Callable[..., tuple[Any, Any]]: ...
@overload
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...], has_aux: Literal[True]
) -> Callable[..., tuple[Any, Any]]: ...
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Gradient of a function returning a 0-d array; keyword arguments pass through.

    ``argnums`` (int or tuple, negatives allowed) picks the differentiated positional
    arguments; each may be a pytree. With ``has_aux``, returns ``(grad, aux)``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(
    ...     jnp.ones(2), jnp.arange(2.0))
    (Array([0., 1.], dtype=float32), Array([1., 1.], dtype=float32))

    Differences from torch: error messages mention ``grad_and_value`` as torch's do; an
    integer scalar output gives zero gradients as in torch (``jax.grad`` raises).
    """
    _checks.check_callable(func, "grad")

    @_core.wraps(func, _GradTransform(argnums=argnums, has_aux=has_aux))
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _grad_call(func, argnums, has_aux, args, kwargs, with_value=False)

    return wrapper


@dataclasses.dataclass(frozen=True, eq=False)
class _GradTransform(_jit.Transform):
    argnums: Any
    has_aux: Any


@dataclasses.dataclass(frozen=True, eq=False)
class _GradAndValueTransform(_GradTransform):
    pass


_GradTransform.make = grad
_GradAndValueTransform.make = grad_and_value


def _grad_call(
    func: Callable[..., Any],
    argnums: Any,
    has_aux: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    with_value: bool,
) -> Any:
    argnums = _checks.normalize_argnums(argnums, len(args))
    _checks.check_primal_leaves(_checks.slice_argnums(args, argnums))
    arrays, desc = _core.split_arrays((args, kwargs))
    program = _Grad.of(desc=desc, argnums=argnums, has_aux=has_aux, with_value=with_value)
    return _core.call(func, program, arrays)


@dataclasses.dataclass(frozen=True, eq=False)
class _Grad(_jit.Program):
    desc: _core.CallDesc
    argnums: int | tuple[int, ...]
    has_aux: bool
    with_value: bool

    def __call__(self, func: Callable[..., Any], arrays: list[Any]) -> Any:
        return _grad_run(func, self, arrays)


def _grad_run(func: Callable[..., Any], p: _Grad, arrays: list[Any]) -> Any:
    argnums, has_aux, with_value = p.argnums, p.has_aux, p.with_value
    args, kwargs = _core.merge_arrays(p.desc, arrays)
    diff_flat, diff_struct = _tree.flatten_structure(_checks.slice_argnums(args, argnums))

    def fn(*flat: Any) -> tuple[list[Any], Any]:
        new_args = _checks.replace_argnums(args, argnums, diff_struct.unflatten(list(flat)))
        out, aux = _split_aux(func(*new_args, **kwargs), has_aux, _GRAD)
        if not _checks.is_tensor(out):
            raise RuntimeError(f"{_GRAD}: Expected f(*args) to return a Tensor, got {type(out)}")
        if out.ndim != 0:
            raise RuntimeError(
                f"{_GRAD}: Expected f(*args) to return a scalar Tensor, got tensor with "
                f"{out.ndim} dims. Maybe you wanted to use the vjp or jacrev APIs instead?"
            )
        _checks.check_real_implicit_grad(out.dtype)
        out = _checks.to_array(out)
        if has_aux:
            aux = _flat_aux(aux, seen)
        return ([out] if _checks.is_inexact(out) else []), (out, aux)

    seen: dict[str, Any] = {}
    outs, pullback, (value, aux) = _core.reverse(fn, diff_flat)
    grads = _core.pull(pullback, [jnp.ones_like(o) for o in outs])
    g = diff_struct.unflatten(grads)
    if has_aux:
        aux = seen["aux"].unflatten(aux)
    if with_value:
        return (g, (value, aux)) if has_aux else (g, value)
    return (g, aux) if has_aux else g


# -- jacrev / jacfwd / hessian ---------------------------------------------------------------


def jacrev(
    func: Callable[..., Any],
    argnums: int | tuple[int, ...] = 0,
    *,
    has_aux: bool = False,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """Jacobian by reverse mode (vmapped ``vjp`` over one-hot cotangents).

    The result has the output's structure; each leaf has the structure of the ``argnums``
    arguments (a tuple for tuple ``argnums``), with shape ``out.shape + in.shape``.
    ``chunk_size`` bounds how many cotangents are mapped at once (memory), never values.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.jacrev(jnp.sin)(jnp.zeros(2))
    Array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    _checks.check_callable(func, "jacrev")
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @_core.wraps(func, _JacrevTransform(argnums=argnums, has_aux=has_aux, chunk_size=chunk_size))
    def wrapper(*args: Any) -> Any:
        _checks.check_real("jacrev", args, is_input=True)
        argnums_ = _checks.normalize_argnums(argnums, len(args))
        _checks.check_primal_leaves(_checks.slice_argnums(args, argnums_))
        arrays, desc = _core.split_arrays(args)
        program = _Jacrev.of(desc=desc, argnums=argnums_, has_aux=has_aux, chunk_size=chunk_size)
        return _core.call(func, program, arrays)

    return wrapper


def _replacing(
    args: tuple[Any, ...], argnums: Any, diff_struct: _tree.Structure
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """``args`` with the differentiated ones rebuilt from the flat arrays a transform traces."""
    return lambda flat: _checks.replace_argnums(args, argnums, diff_struct.unflatten(list(flat)))


@dataclasses.dataclass(frozen=True, eq=False)
class _JacrevTransform(_jit.Transform):
    argnums: Any
    has_aux: Any
    chunk_size: Any


_JacrevTransform.make = jacrev


def _jac_structure(
    out_struct: _tree.Structure,
    in_struct: _tree.Structure,
    jac: list[list[Any]],
) -> Any:
    return out_struct.unflatten([in_struct.unflatten(row) for row in jac])


@dataclasses.dataclass(frozen=True, eq=False)
class _Jacrev(_jit.Program):
    desc: _core.CallDesc
    argnums: int | tuple[int, ...]
    has_aux: bool
    chunk_size: int | None

    def __call__(self, func: Callable[..., Any], arrays: list[Any]) -> Any:
        return _jacrev_run(func, self, arrays)


def _jacrev_run(func: Callable[..., Any], p: _Jacrev, arrays: list[Any]) -> Any:
    argnums, has_aux, chunk_size = p.argnums, p.has_aux, p.chunk_size
    args = _core.merge_arrays(p.desc, arrays)
    diff_flat, diff_struct = _tree.flatten_structure(_checks.slice_argnums(args, argnums))
    seen: dict[str, Any] = {}

    def outputs(flat_out: list[Any]) -> None:
        _floating_outputs(flat_out)
        _checks.check_real("jacrev", flat_out, is_input=False)

    fn = _flat_fn(func, _replacing(args, argnums, diff_struct), _VJP, has_aux, seen, outputs)

    outs, pullback, aux = _core.reverse(fn, diff_flat)
    jac = _core.jacobian_reverse(pullback, outs, diff_flat, chunk_size)
    return _with_aux(_jac_structure(seen["out"], diff_struct, jac), has_aux, seen, aux)


def jacfwd(
    func: Callable[..., Any],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    *,
    randomness: str = "error",
) -> Callable[..., Any]:
    """Jacobian by forward mode (vmapped ``jvp`` over one-hot tangents).

    Same result structure as :func:`jacrev`. ``has_aux`` may be given positionally, as in
    torch. ``randomness`` is validated as torch does; jnp code has no hidden RNG state, and
    with ``randomness="error"`` a function that draws from numpy's or Python's global RNG
    gets torch's error, as :func:`vmap` gives it.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.jacfwd(lambda x: x ** 2)(jnp.arange(2.0))
    Array([[0., 0.],
           [0., 2.]], dtype=float32)

    Differences from torch: ``no_grad`` blocks are ignored, as torch's forward AD does.
    """
    _checks.check_callable(func, "jacfwd")

    @_core.wraps(func, _JacfwdTransform(argnums=argnums, has_aux=has_aux, randomness=randomness))
    def wrapper(*args: Any) -> Any:
        _checks.check_randomness(randomness)
        _checks.check_real("jacfwd", args, is_input=True)
        argnums_ = _checks.normalize_argnums(argnums, len(args))
        for leaf in _tree.leaves(_checks.slice_argnums(args, argnums_)):
            if not _checks.is_tensor(leaf):
                raise RuntimeError(
                    f"{_JVP}: Expected primals to only contain Tensors, got {type(leaf)}"
                )
            _check_jvp_pair(leaf, leaf)
        if randomness == "error":  # (torch's jacfwd vmaps its jvp with this randomness)
            _warnings.random_error(func)
        arrays, desc = _core.split_arrays(args)
        program = _Jacfwd.of(desc=desc, argnums=argnums_, has_aux=has_aux)
        return _core.call(func, program, arrays)

    return wrapper


@dataclasses.dataclass(frozen=True, eq=False)
class _JacfwdTransform(_jit.Transform):
    argnums: Any
    has_aux: Any
    randomness: Any


_JacfwdTransform.make = jacfwd


@dataclasses.dataclass(frozen=True, eq=False)
class _Jacfwd(_jit.Program):
    desc: _core.CallDesc
    argnums: int | tuple[int, ...]
    has_aux: bool

    def __call__(self, func: Callable[..., Any], arrays: list[Any]) -> Any:
        return _jacfwd_run(func, self, arrays)


def _jacfwd_run(func: Callable[..., Any], p: _Jacfwd, arrays: list[Any]) -> Any:
    argnums, has_aux = p.argnums, p.has_aux
    args = _core.merge_arrays(p.desc, arrays)
    diff_flat, diff_struct = _tree.flatten_structure(_checks.slice_argnums(args, argnums))
    seen: dict[str, Any] = {}

    def outputs(flat_out: list[Any]) -> None:
        _checks.check_real("jacfwd", flat_out, is_input=False)

    fn = _flat_fn(func, _replacing(args, argnums, diff_struct), _JVP, has_aux, seen, outputs)
    outs, aux = fn(*diff_flat)  # shapes, checks and aux, once (XLA drops the duplicate)

    def push(*tangents: Any) -> list[Any]:
        return _core.forward(fn, diff_flat, tangents, honor_no_grad=False)[1]

    jac = _core.jacobian_forward(push, outs, diff_flat)
    return _with_aux(_jac_structure(seen["out"], diff_struct, jac), has_aux, seen, aux)


def hessian(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False
) -> Callable[..., Any]:
    """Hessian as ``jacfwd(jacrev(func, argnums), argnums)``, exactly torch's definition.

    The output need not be a scalar (the result is then a Jacobian of the Jacobian).

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.hessian(lambda x: (x ** 3).sum())(jnp.arange(2.0))
    Array([[0., 0.],
           [0., 6.]], dtype=float32)

    Beyond torch: ``has_aux=True`` (``func`` returns ``(output, aux)``; the call returns
    ``(hessian, aux)``).
    """
    inner = jacrev(func, argnums, has_aux=has_aux)
    return jacfwd(inner, argnums, has_aux=has_aux)


# -- linearize ------------------------------------------------------------------------------


class LinearizeMeta:
    __slots__ = ("in_avals", "in_structure", "jits", "out_desc")

    def __init__(self, in_structure: Any, in_avals: Any, out_desc: Any) -> None:
        self.in_structure = in_structure
        self.in_avals = in_avals
        self.out_desc = out_desc  # the output's structure and non-array leaves
        # made by a compiled program: its structure is stable, transforms of it compile too
        self.jits = _jit.keep(_jit.Jits()) if _jit.tracing() else None


class JvpFn:
    """The ``jvp_fn`` of :func:`linearize`: maps primal tangents to output tangents.

    A registered pytree (it crosses ``jax.jit``); tangents must match the primals' structure,
    shapes and dtypes exactly, as in torch.
    """

    __slots__ = ("_lin", "_meta")

    def __init__(self, lin: Any, meta: LinearizeMeta) -> None:
        self._lin = lin
        self._meta = meta

    def jaxfunc_jits(self) -> dict[Any, Any] | None:
        """Where the cache keeps programs compiled for this callable (see ``VjpFn``)."""
        jits = self._meta.jits
        return None if jits is None else jits()

    def __call__(self, *tangents: Any) -> Any:
        meta = self._meta
        flat, struct = _tree.flatten_structure(tangents)
        if not _tree.matches(struct, meta.in_structure):
            primals = meta.in_structure.unflatten([0] * meta.in_structure.num_leaves)
            raise RuntimeError(
                f"Expected the tangents {_tree.treespec_repr(tangents)} to have the same "
                f"argspec as the primals {_tree.treespec_repr(primals)}"
            )
        for idx, (t, (shape, dtype)) in enumerate(zip(flat, meta.in_avals)):
            if not _checks.is_tensor(t):
                raise TypeError(f"linearize's jvp_fn expects Tensors, got {type(t)}")
            for what, got, want in (
                ("shape", _checks.torch_size(t.shape), _checks.torch_size(shape)),
                ("dtype", _checks.torch_dtype(t.dtype), _checks.torch_dtype(dtype)),
            ):
                if got != want:
                    raise RuntimeError(
                        f"tangent:{idx} with {what} {got} in flattened pytree doesn't match "
                        f"the {what} {want} of the corresponding primal."
                    )
        try:
            out = self._lin(*[_checks.to_array(t) for t in flat])
        except Exception as error:
            raise _checks.torch_error(error) or error from error
        return _core.merge_arrays(meta.out_desc, out)


_jit.PYTREE_CALLABLES.add(JvpFn)
jax.tree_util.register_pytree_node(
    JvpFn,
    lambda f: ((f._lin,), f._meta),
    lambda meta, children: JvpFn(children[0], meta),
)


@overload
def linearize(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False
) -> tuple[Any, JvpFn]: ...
@overload
def linearize(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[True]
) -> tuple[Any, JvpFn, Any]: ...
def linearize(func: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(output, jvp_fn)``: evaluate ``func`` once and return its linear map at ``primals``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> out, jvp_fn = jaxfunc.func.linearize(jnp.sin, jnp.zeros(2))
    >>> jvp_fn(jnp.ones(2))
    Array([1., 1.], dtype=float32)

    Beyond torch: ``func`` is evaluated once (torch evaluates it twice) and ``has_aux=True``
    returns ``(output, jvp_fn, aux)``. ``jvp_fn`` is a pytree. Forward mode: ``no_grad``
    blocks are ignored, as in torch.
    """
    _checks.check_callable(func, "linearize")
    flat, struct = _tree.flatten_structure(primals)
    for leaf in flat:
        if not _checks.is_tensor(leaf):
            raise TypeError(
                f"linearize(func, *primals): expected primals to be Tensors, got {type(leaf)}"
            )
        _check_jvp_pair(leaf, leaf)
    arrays = [_checks.to_array(x) for x in flat]
    return _core.call(func, _Linearize.of(structure=struct, has_aux=has_aux), arrays)


@dataclasses.dataclass(frozen=True, eq=False)
class _Linearize(_jit.Program):
    structure: _tree.Structure
    has_aux: bool

    def __call__(self, func: Callable[..., Any], arrays: list[Any]) -> tuple[Any, ...]:
        return _linearize_run(func, self.structure, self.has_aux, arrays)


def _linearize_run(
    func: Callable[..., Any], struct: _tree.Structure, has_aux: bool, arrays: list[Any]
) -> tuple[Any, ...]:
    seen: dict[str, Any] = {}

    def fn(*flat: Any) -> tuple[list[Any], Any]:
        # torch's linearize checks nothing about the output: non-tensor leaves (None,
        # numbers) come back as they are, from the call and from jvp_fn.
        out, aux = _split_aux(func(*struct.unflatten(list(flat))), has_aux, _LINEARIZE)
        if has_aux:
            aux = _flat_aux(aux, seen)
        arrays_out, seen["out"] = _core.split_arrays(out)
        return arrays_out, aux

    out, lin, aux = jax.linearize(fn, *arrays, has_aux=True)
    meta = LinearizeMeta(struct, tuple((tuple(a.shape), a.dtype) for a in arrays), seen["out"])
    return _with_aux((_core.merge_arrays(seen["out"], out), JvpFn(lin, meta)), has_aux, seen, aux)
