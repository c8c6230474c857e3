"""The private core every public transform stands on.

Data flow of one transform call:

    public face (func.py / autograd/functional.py)
      -> checks torch makes before running anything (_checks), options made static
      -> _jit.call(func, program, arrays)                 compiled or eager, never stale
           -> program(func, arrays)                         a frozen dataclass per transform
                -> reverse() / forward() / jacobian_*()     this module: jax.vjp / jax.jvp / vmap
                   with torch's conventions applied here:   no_grad masking, complex conjugation,
                                                            cotangent casts, zero filling

Every function below takes *flat* functions: ``fn(*arrays) -> (list_of_outputs, aux)``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _compat, _grad_mode, _jit, _tree, _warnings

FlatFn = Callable[..., tuple[list[Any], Any]]


# -- handing programs to the compile cache -------------------------------------------------------

# The cache tells the user through jaxfunc's warnings, and raises JAX's device errors as
# torch's errors.
_jit.set_hooks(_warnings.gave_up, _warnings.check_call, _checks.torch_error)

#: ``call(func, program, arrays)``: run a transform's program through the compile cache.
call = _jit.call


def wraps(
    func: Callable[..., Any], transform: _jit.Transform
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``functools.wraps`` (tolerating callables without ``__name__``), and a note that the
    wrapper is ``transform.wrap(func)``: the compile cache keys a transform of a transform
    (``hessian``, ``vmap(grad(f))``, made afresh at each call) on ``func`` and the options,
    not on the new wrapper object."""

    def deco(wrapper: Callable[..., Any]) -> Callable[..., Any]:
        try:
            functools.wraps(func)(wrapper)
        except (AttributeError, TypeError):  # pragma: no cover - exotic callables
            wrapper.__wrapped__ = func  # type: ignore[attr-defined]
        _jit.register_wrapper(wrapper, func, transform)
        return wrapper

    return deco


# -- complex numbers: torch's conjugate convention ----------------------------------------------


def conj_complex(values: Sequence[Any]) -> list[Any]:
    """torch's reverse mode is JAX's, conjugated on the way in and on the way out."""
    return [jnp.conj(v) if _checks.is_complex(v) else v for v in values]


# -- reverse and forward mode ------------------------------------------------------------------


def reverse(
    fn: FlatFn, primals: Sequence[Any], remat_policy: Callable[..., bool] | None = None
) -> tuple[list[Any], Callable[..., Any], Any]:
    """``jax.vjp(fn, *primals, has_aux=True)``, with no_grad blocks inside ``fn`` honoured.

    The pullback takes and returns JAX's convention (no conjugation); see ``pull``. ``fn``'s
    Python runs once (a replayed trace stands in for it when grad-mode markers are checked).
    ``remat_policy``: recompute in the pullback what the policy does not save
    (``jax.checkpoint``); applied here, not by the caller, because a checkpoint would hide
    ``fn``'s grad-mode markers from the search for them. A function with markers keeps its
    residuals (the masked linearization stores them anyway).
    """
    primals = tuple(primals)

    def remat(f: Callable[..., Any]) -> Callable[..., Any]:
        return f if remat_policy is None else jax.checkpoint(f, policy=remat_policy)

    if _grad_mode.never_entered():
        result = jax.vjp(remat(fn), *primals, has_aux=True)
        if _grad_mode.never_entered():
            return result
    traced = _grad_mode.trace(fn, primals)
    if traced is not None and not traced[1]:
        return jax.vjp(remat(traced[0]), *primals, has_aux=True)
    out, lin, aux = _grad_mode.masked_linearize(traced[0] if traced else fn, primals)
    _, pullback = jax.vjp(lin, *[jnp.zeros_like(p) for p in primals])
    return out, pullback, aux


def forward(
    fn: FlatFn, primals: Sequence[Any], tangents: Sequence[Any], honor_no_grad: bool
) -> tuple[list[Any], list[Any], Any]:
    """``jax.jvp(fn, primals, tangents, has_aux=True)``; integer outputs get integer zeros.

    ``honor_no_grad`` is for ``autograd.functional`` (torch computes its jvp with the
    double-backward trick, so no_grad applies); torch.func's forward mode ignores no_grad.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    result = None
    if not honor_no_grad or _grad_mode.never_entered():
        result = jax.jvp(fn, primals, tangents, has_aux=True)
    if result is None or (honor_no_grad and not _grad_mode.never_entered()):
        traced = _grad_mode.trace(fn, primals)
        if traced is not None and not traced[1]:
            result = jax.jvp(traced[0], primals, tangents, has_aux=True)
        else:
            out, lin, aux = _grad_mode.masked_linearize(traced[0] if traced else fn, primals)
            result = (out, lin(*tangents), aux)
    out, tan, aux = result
    return out, [_int_zero_tangent(o, t) for o, t in zip(out, tan)], aux


def _int_zero_tangent(out: Any, tan: Any) -> Any:
    if _checks.is_inexact(out):
        return tan
    return jnp.zeros(jnp.shape(out), jnp.result_type(out))


def pull(pullback: Callable[..., Any], cotangents: Sequence[Any]) -> list[Any]:
    """Apply a JAX pullback with torch's complex convention."""
    return conj_complex(pullback(conj_complex(cotangents)))


def detach(tree: Any) -> Any:
    """``create_graph=False``: results are constants to any enclosing transform."""
    return jax.tree_util.tree_map(jax.lax.stop_gradient, tree)


# -- Jacobians ----------------------------------------------------------------------------------


def basis(shapes: Sequence[tuple[int, ...]], dtypes: Sequence[Any]) -> list[Any]:
    """One-hot rows for the flattened concatenation of the given arrays: ``(total, *shape)``.

    The rows pass an optimization barrier: XLA would otherwise fold ``one_hot * d`` into a
    select and give 0 where torch (and JAX run op by op) gives ``0 * inf = nan``, off the
    diagonal of a Jacobian at a singular point. Measured cost: none beyond noise.
    """
    sizes = [_checks.numel(s) for s in shapes]
    total = sum(sizes)
    rows, start = [], 0
    for shape, dtype, size in zip(shapes, dtypes, sizes):
        eye = jnp.eye(total, size, -start, dtype=dtype)
        rows.append(eye.reshape((total, *shape)))
        start += size
    return list(jax.lax.optimization_barrier(rows))


def chunked_vmap(fn: Callable[..., Any], batched: Sequence[Any], chunk_size: int | None) -> Any:
    """``vmap(fn)(*batched)``, ``chunk_size`` rows at a time: a sequential loop over chunks
    (``lax.map``), so at most one chunk's intermediates are alive at once."""
    total = jnp.shape(batched[0])[0]
    if chunk_size is None or chunk_size >= total:
        return jax.vmap(fn)(*batched)
    _checks.check_chunk_size_type(chunk_size)
    return jax.lax.map(lambda rows: fn(*rows), tuple(batched), batch_size=chunk_size)


def jacobian_reverse(
    pullback: Callable[..., Any],
    outs: Sequence[Any],
    ins: Sequence[Any],
    chunk_size: int | None = None,
) -> list[list[Any]]:
    """``J[i][j]`` = d outs[i] / d ins[j] (shape ``out_i.shape + in_j.shape``) from a pullback."""
    rows = basis([o.shape for o in outs], [o.dtype for o in outs])
    cols = chunked_vmap(lambda *ct: pull(pullback, ct), rows, chunk_size)
    sizes = [_checks.numel(o.shape) for o in outs]
    offsets = np.cumsum([0, *sizes])
    return [
        [
            cols[j][offsets[i] : offsets[i + 1]].reshape(outs[i].shape + ins[j].shape)
            for j in range(len(ins))
        ]
        for i in range(len(outs))
    ]


def jacobian_forward(
    push: Callable[..., list[Any]], outs: Sequence[Any], ins: Sequence[Any]
) -> list[list[Any]]:
    """``J[i][j]`` from a pushforward ``push(*tangents) -> output tangents``."""
    rows = basis([x.shape for x in ins], [x.dtype for x in ins])
    tans = jax.vmap(lambda *t: push(*t))(*rows)  # each (total_in, *out_shape)
    sizes = [_checks.numel(x.shape) for x in ins]
    offsets = np.cumsum([0, *sizes])
    result = []
    for i, o in enumerate(outs):
        moved = jnp.moveaxis(tans[i], 0, -1)  # (*out_shape, total_in)
        result.append(
            [
                moved[..., offsets[j] : offsets[j + 1]].reshape(o.shape + ins[j].shape)
                for j in range(len(ins))
            ]
        )
    return result


# -- the callable torch.func.vjp returns --------------------------------------------------------


class VjpMeta:
    """What a ``VjpFn`` knows statically (compared by identity when crossing ``jax.jit``).

    ``compiled``: the residuals came out of the compile cache's program, so the backward
    is one compiled call (also under ``jax.vmap``); a vjp made eagerly or inside a user's
    own jit applies its pullback directly (the user's program stays raw JAX).
    ``pullback``: the structure of JAX's pullback (which holds its linearized program), whose
    leaves (the residuals) the ``VjpFn`` holds, flat, so that a compiled call passes plain
    arrays. ``backward`` (compiled only) and ``jits`` (the cache's programs taking this
    ``vjp_fn`` as an argument, e.g. ``vmap(vjp_fn)``) live and die with the cache entry.

    The meta is the static part of a ``vjp_fn`` passed to ``jax.jit``, so JAX's caches keep
    it (up to 4096 of them) long after its ``vjp_fn``s are gone: it must hold nothing heavy.
    Made by a compiled program, it refers to the pullback weakly: the cache entry owns it
    (its structures rebuild such ``vjp_fn``s), and so does every ``VjpFn``.
    """

    __slots__ = (
        "__weakref__",
        "backward",
        "compiled",
        "in_structures",
        "jits",
        "out_avals",
        "out_structure",
        "pullback",
        "single_output",
    )

    def __init__(
        self,
        out_structure: _tree.Structure,
        out_avals: tuple[tuple[tuple[int, ...], Any], ...],
        in_structures: tuple[_tree.Structure, ...],
        compiled: bool,
        pullback_def: Any,
    ) -> None:
        self.out_structure = out_structure
        self.out_avals = out_avals
        self.in_structures = in_structures
        self.compiled = compiled
        # held by the cache entry, weakly here (see _jit.keep); backward gone: apply the pullback
        self.pullback = _jit.keep(_PullbackDef(pullback_def), for_life=True)
        self.backward = _jit.keep(_compiled_backward(pullback_def)) if compiled else None
        self.jits = _jit.keep(_jit.Jits()) if compiled else None
        self.single_output = out_structure.treedef.num_nodes == 1 and len(out_avals) == 1


class _PullbackDef:
    """The structure of a pullback (weakly referable)."""

    __slots__ = ("__weakref__", "treedef")

    def __init__(self, treedef: Any) -> None:
        self.treedef = treedef


def _compiled_backward(pullback_def: Any) -> Callable[..., Any]:
    """The backward of a cached program's ``vjp_fn``s, compiled once per trace and owned by
    their shared ``VjpMeta``: it is freed with them and with the cache entry."""
    return jax.jit(lambda residuals, cts: pull(pullback_def.unflatten(residuals), cts))


class VjpFn:
    """The ``vjp_fn`` of :func:`jaxfunc.func.vjp`: maps output cotangents to input ones.

    A registered pytree (its leaves are the residuals), so it can be returned from and
    passed into ``jax.jit`` and mapped with ``jax.vmap``. Accepts torch's ``retain_graph``
    and ``create_graph`` keywords; both are no-ops (results stay differentiable by any
    enclosing JAX transform, and the residuals can be used any number of times).
    """

    __slots__ = ("_meta", "_pullback", "_residuals")

    def __init__(self, residuals: tuple[Any, ...], meta: VjpMeta) -> None:
        self._residuals = residuals
        self._meta = meta
        # None only if rebuilt by JAX from a meta whose entry and vjp_fns are all gone
        self._pullback: _PullbackDef | None = meta.pullback()

    @classmethod
    def from_pullback(
        cls,
        pullback: Any,
        out_structure: _tree.Structure,
        out_avals: tuple[tuple[tuple[int, ...], Any], ...],
        in_structures: tuple[_tree.Structure, ...],
        compiled: bool,
    ) -> VjpFn:
        residuals, pullback_def = jax.tree_util.tree_flatten(pullback)
        meta = VjpMeta(out_structure, out_avals, in_structures, compiled, pullback_def)
        return cls(tuple(residuals), meta)

    def jaxfunc_jits(self) -> dict[Any, Any] | None:
        """Where the cache keeps programs compiled for this callable; None when it was not
        made by a compiled program (its structure is then not stable)."""
        jits = self._meta.jits
        return None if jits is None else jits()

    def _pullback_def(self) -> Any:
        if self._pullback is None:
            raise RuntimeError(
                "jaxfunc: this vjp_fn was rebuilt by JAX after the compiled program that "
                "made it was freed; call jaxfunc.func.vjp again"
            )
        return self._pullback.treedef

    def __repr__(self) -> str:
        return f"<jaxfunc vjp_fn: {self._meta.out_structure.pprint()} -> inputs>"

    def __call__(
        self, cotangents: Any, retain_graph: bool = True, create_graph: bool | None = None
    ) -> tuple[Any, ...]:
        meta = self._meta
        if meta.single_output and type(cotangents) is _compat.ArrayImpl:
            flat = [cotangents]  # the common case, without a pytree walk
        else:
            flat, struct = _tree.flatten_structure(cotangents)
            if not _tree.matches(struct, meta.out_structure):
                raise RuntimeError(
                    "Expected pytree structure of cotangents to be the same as pytree "
                    f"structure of outputs to the function. cotangents: {struct.pprint()}, "
                    f"primal output: {meta.out_structure.pprint()}"
                )
        cts = []
        for i, (ct, (shape, dtype)) in enumerate(zip(flat, meta.out_avals)):
            if ct is None:
                ct = _implicit_ones(shape, dtype)
            elif not _checks.is_tensor(ct):
                raise TypeError(
                    f"gradients can be either Tensors or None, but got {type(ct).__name__}"
                )
            if ct.shape != shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{_checks.torch_size(ct.shape)} and output[{i}] has a shape of "
                    f"{_checks.torch_size(shape)}."
                )
            cts.append(
                ct if ct.dtype == dtype else _checks.cast_like(_checks.to_array(ct), dtype, i)
            )
        backward = meta.backward and meta.backward()
        try:
            if backward is not None:  # a cached program's: one compiled backward for all
                flat_in = backward(self._residuals, tuple(cts))
            else:
                flat_in = pull(self._pullback_def().unflatten(self._residuals), cts)
        except Exception as error:
            raise _checks.torch_error(error) or error from error
        if len(meta.in_structures) == 1 and meta.in_structures[0] is _tree.LEAF:
            return (flat_in[0],)
        result, start = [], 0
        for s in meta.in_structures:
            result.append(s.unflatten(flat_in[start : start + s.num_leaves]))
            start += s.num_leaves
        return tuple(result)


def _implicit_ones(shape: tuple[int, ...], dtype: Any) -> Any:
    """torch creates a ones cotangent for a ``None`` given to a one-element real output."""
    _checks.check_implicit_ones(shape, dtype)
    return jnp.ones(shape, dtype)


_jit.PYTREE_CALLABLES.add(VjpFn)
jax.tree_util.register_pytree_node(
    VjpFn,
    lambda f: (f._residuals, f._meta),
    lambda meta, residuals: VjpFn(tuple(residuals), meta),
)


# -- splitting a call's arguments into arrays (traced) and everything else (static) -------------


class _ArraySlot:
    """Marks where an array sat in a call's arguments."""

    jaxfunc_static = True  # keys a compile (by identity: there is one)

    def __repr__(self) -> str:
        return "<array>"


ARRAY = _ArraySlot()


@dataclasses.dataclass(frozen=True, eq=False)
class CallDesc(_jit.Static):
    """Everything in a call's arguments that is not an array: their structure and the
    non-array leaves, keyed by type and value (``True``, ``1`` and ``1.0`` stay apart). A
    leaf no compile can be keyed on (a mutable object) makes the call run uncompiled."""

    structure: _tree.Structure
    statics: tuple[Any, ...]


_ONE_ARRAY = CallDesc(_tree.LEAF, (ARRAY,))


#: The descriptions of the commonest calls, ``f(*args)`` and ``f(*args, **{})`` with every
#: argument a jax array, by (form, number of arguments): shared, so that a repeated call
#: finds its program (``Program.of``) without building and keying a new description.
_ALL_ARRAYS: dict[tuple[bool, int], CallDesc] = {}


def split_arrays(tree: Any) -> tuple[list[Any], CallDesc]:
    """The arrays of ``tree`` (numpy ones converted) and a description of the rest."""
    if type(tree) is _compat.ArrayImpl:  # (the commonest: one jax array)
        return [tree], _ONE_ARRAY
    if _checks.is_tensor(tree):
        return [_checks.to_array(tree)], _ONE_ARRAY
    t = type(tree)
    with_kwargs = t is tuple and len(tree) == 2 and type(tree[1]) is dict and not tree[1]
    args = tree[0] if with_kwargs else tree
    if type(args) is tuple and all(type(a) is _compat.ArrayImpl for a in args):
        desc = _ALL_ARRAYS.get((with_kwargs, len(args)))
        if desc is None:
            desc = _ALL_ARRAYS[with_kwargs, len(args)] = _describe(tree)[1]
        return list(args), desc
    return _describe(tree)


#: The descriptions of trees of jax arrays only, by structure (and dict key orders): one
#: object per structure, so that ``Program.of`` knows a repeated call at a glance.
_DESCRIBED: dict[tuple[Any, Any], CallDesc] = {}
MAX_DESCRIBED = 1024


def _describe(tree: Any) -> tuple[list[Any], CallDesc]:
    flat, struct = _tree.flatten_structure(tree)
    if all(type(x) is _compat.ArrayImpl for x in flat):
        key = (struct.treedef, struct.orders)
        desc = _DESCRIBED.get(key)
        if desc is None:
            if len(_DESCRIBED) >= MAX_DESCRIBED:
                _DESCRIBED.clear()
            desc = _DESCRIBED[key] = CallDesc(struct, (ARRAY,) * len(flat))
        return flat, desc
    arrays = [_checks.to_array(x) for x in flat if _checks.is_tensor(x)]
    statics = tuple(ARRAY if _checks.is_tensor(x) else x for x in flat)
    return arrays, CallDesc(struct, statics)


def merge_arrays(desc: CallDesc, arrays: Sequence[Any]) -> Any:
    it = iter(arrays)
    return desc.structure.unflatten([next(it) if s is ARRAY else s for s in desc.statics])
