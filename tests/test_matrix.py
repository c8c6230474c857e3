"""The composition matrix: every ordered pair of torch.func's transforms (and
autograd.functional inside them), a sample of option variations and triples, compared with
torch 2.13 in three regimes, plus issue 10's defects as named cases.

Regimes (each compared with the same torch outcome, call by call):

- ``fresh``: the outermost wrapper built afresh at each of 3 calls (the user's functions are
  the same objects, so the cache sees a new wrapper of a known function: it unwraps it);
- ``reused``: one wrapper object, 3 calls (the first call compiles, later ones reuse the program);
- ``jit``: inside an outer ``jax.jit``, 3 calls;
- and, for a sample (``BATCHED``), under an outer ``jax.vmap`` over a batch of two
  (torch: each example's result, stacked).

The cells are in ``matrix_cases.py``; torch's outcomes are recorded in
``torch_outcomes_matrix.json`` for the legs without torch (``python tests/recorded.py``
rewrites it); with torch installed, the record is checked against live torch. Where torch
cannot run a composition (autograd.functional inside torch.func; linearize nested or over
other transforms), its side computes the same quantity with torch.func (see
``matrix_cases._TorchAFViaFunc`` and ``matrix_cases.linearized``).

Ids read like ``vmap(hessian)-elementwise-fresh`` (``lambda:hessian``: used inside a
function the outer transform takes, rather than handed to it as it is). ``-k`` cannot parse
parentheses: select a cell by node id, ``"tests/test_matrix.py::test_cell[vmap(hessian)-
elementwise-fresh]"``. ``python tests/matrix_report.py`` prints the failures grouped by cause.
"""

from __future__ import annotations

from typing import Any

import jax
import matrix_cases as M
import numpy as np
import pytest
from oracle import HAVE_TORCH, JaxSide, Raised, TorchSide, _plain, assert_same, outcome
from recorded import decode

import jaxfunc

J = JaxSide("float64")
RECORD = M.load()
RTOL, ATOL = 1e-6, 1e-10

_torch_outcomes: dict[str, Any] = {}


def torch_outcome(case: Any) -> Any:
    """torch's outcome: live (and then equal to the record), or recorded without torch."""
    if case.id in _torch_outcomes:
        return _torch_outcomes[case.id]
    if case.id not in RECORD:
        pytest.fail(f"no recorded torch outcome for {case.id!r}: run python tests/recorded.py")
    want = decode(RECORD[case.id])
    if HAVE_TORCH:
        live = outcome(case.body, TorchSide("float64"))
        # a few ulps: torch's vectorized kernels round differently on different CPUs
        assert_same(want, live, rtol=2e-15, atol=0, messages=case.messages, path="recorded")
        want = live
    _torch_outcomes[case.id] = want
    return want


def _cache_stats() -> dict[str, int]:
    # the cache's event counters (a private module: update here if the cache moves)
    from jaxfunc._jit import _cache

    return _cache.stats()


# -- under jax.jit / jax.vmap: results cross the boundary as a flat list ----------------------------
# JAX's own flattening rebuilds dicts with sorted keys; taking the leaves out in insertion
# order inside the trace and rebuilding outside keeps the structure jaxfunc returned.

_LEAF = object()


def _strip(tree: Any, arrays: list[Any]) -> Any:
    if isinstance(tree, dict):
        return {k: _strip(v, arrays) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_strip(v, arrays) for v in tree)
    if isinstance(tree, jax.Array):
        arrays.append(tree)
        return _LEAF
    return tree


def _fill(skeleton: Any, arrays: Any) -> Any:
    if isinstance(skeleton, dict):
        return {k: _fill(v, arrays) for k, v in skeleton.items()}
    if isinstance(skeleton, (tuple, list)):
        return type(skeleton)(_fill(v, arrays) for v in skeleton)
    return next(arrays) if skeleton is _LEAF else skeleton


def _through(transform: Any, fn: Any) -> Any:
    skeleton: list[Any] = []

    def body(*args: Any) -> list[Any]:
        arrays: list[Any] = []
        skeleton[:] = [_strip(fn(*args), arrays)]
        return arrays

    mapped = transform(body)

    def call(*args: Any) -> Any:
        arrays = mapped(*args)  # traces (and fills the skeleton) on its first call
        return _fill(skeleton[0], iter(arrays))

    return call


def _has_dict(tree: Any) -> bool:
    if isinstance(tree, dict):
        return True
    return isinstance(tree, (tuple, list)) and any(_has_dict(v) for v in tree)


def _sorted_dicts(plain: Any) -> Any:
    """An outcome with every dict's keys sorted (see ``_sorted_if_dict_args``)."""
    if isinstance(plain, Raised) or plain[0] not in ("dict", "tuple", "list"):
        return plain
    if plain[0] == "dict":
        return ("dict", sorted((k, _sorted_dicts(v)) for k, v in plain[1]))
    return (plain[0], [_sorted_dicts(v) for v in plain[1]])


def _sorted_if_dict_args(args: Any, got: Any, want: Any) -> tuple[Any, Any]:
    # jax.jit and jax.vmap hand a dict argument into the trace with its keys sorted (JAX's
    # pytree flattening), so jaxfunc never sees the user's order there and returns dicts in
    # the order it was given; torch given that sorted dict does the same. Compare key sets.
    if _has_dict(args):
        return _sorted_dicts(got), _sorted_dicts(want)
    return got, want


# -- the regimes ------------------------------------------------------------------------------------

REGIMES = ("fresh", "reused", "jit")


def run_regime(cell: M.Cell, regime: str) -> tuple[list[Any], tuple[Any, ...]]:
    """jaxfunc's outcomes of 3 calls of ``cell`` in ``regime``, and the cell's arguments."""
    jaxfunc.clear_cache()  # every cell starts cold
    make, args = cell.build(J)
    if regime == "fresh":
        call = lambda: make()(*args)
    elif regime == "reused":
        held: list[Any] = []

        def call() -> Any:
            if not held:
                held.append(make())
            return held[0](*args)

    else:
        jitted = _through(jax.jit, lambda *a: make()(*a))
        call = lambda: jitted(*args)
    return [outcome(lambda _: call(), J) for _ in range(3)], args


CELL_PARAMS = [
    pytest.param(cell, regime, id=f"{cell.id}-{regime}") for cell in M.CELLS for regime in REGIMES
]


@pytest.mark.parametrize(("cell", "regime"), CELL_PARAMS)
def test_cell(cell: M.Cell, regime: str) -> None:
    want = torch_outcome(cell)
    before = _cache_stats()
    gots, args = run_regime(cell, regime)
    after = _cache_stats()
    for i, got in enumerate(gots):
        g, w = _sorted_if_dict_args(args, got, want) if regime == "jit" else (got, want)
        assert_same(g, w, messages=cell.messages, rtol=RTOL, atol=ATOL, path=f"call {i + 1}")
    if regime == "reused" and not isinstance(want, Raised):
        # the 2nd and 3rd calls of one wrapper must have gone through a compiled program
        # (unless jaxfunc found the function untraceable and runs it eagerly: none here is)
        assert after.get("hit", 0) > before.get("hit", 0), (before, after)


def run_batched(bcell: M.BatchedCell) -> tuple[list[Any], tuple[Any, ...]]:
    """jaxfunc's outcomes under ``jax.vmap``: one eager call, then two under ``jax.jit``
    (under a trace the cache stands aside, so more eager calls would repeat the first)."""
    jaxfunc.clear_cache()
    make, _ = bcell.cell.build(J)
    batch = bcell.batch(J)
    mapped = _through(jax.vmap, lambda *a: make()(*a))
    compiled = _through(lambda f: jax.jit(jax.vmap(f)), lambda *a: make()(*a))
    calls = [mapped, compiled, compiled]
    return [outcome(lambda _, c=c: c(*batch), J) for c in calls], batch


@pytest.mark.parametrize("bcell", M.BATCHED, ids=[b.id for b in M.BATCHED])
def test_under_jax_vmap(bcell: M.BatchedCell) -> None:
    want = torch_outcome(bcell)
    gots, batch = run_batched(bcell)
    for i, got in enumerate(gots):
        g, w = _sorted_if_dict_args(batch, got, want)
        assert_same(g, w, messages=bcell.messages, rtol=RTOL, atol=ATOL, path=f"call {i + 1}")


# -- issue 10's defects -------------------------------------------------------------------------------

PREFIX_ONLY = {"matrix defects: vmap of a value-dependent function"}


@pytest.mark.parametrize("case", M.DEFECTS, ids=[c.label for c in M.DEFECTS])
def test_defect(case: Any) -> None:
    want = torch_outcome(case)
    jaxfunc.clear_cache()
    for i in range(3):  # the first call compiles, later ones come from the cache
        got = outcome(case.body, J)
        if case.id in PREFIX_ONLY:
            # torch's message names torch's issue tracker; jaxfunc's must open with the
            # same sentence, and be of the same class
            assert isinstance(want, Raised), want
            assert isinstance(got, Raised), got
            assert got.cls == want.cls, (got, want)
            first = want.message.split(". ")[0]
            assert got.message.startswith(first), (got.message, first)
        else:
            assert_same(got, want, rtol=RTOL, atol=ATOL, path=f"call {i + 1}")


def test_vjp_inside_no_grad_is_torch_2() -> None:
    """torch's own value (test_no_grad_outside_vjp_only), and raw jax.grad's."""
    import jax.numpy as jnp

    def g(a: Any) -> Any:
        with jaxfunc.no_grad():
            _, vjp_fn = jaxfunc.func.vjp(lambda t: t**2, a)
        return vjp_fn(jnp.asarray(1.0))[0]

    raw = jax.grad(lambda a: jax.vjp(lambda t: t**2, a)[1](jnp.asarray(1.0))[0])(3.14)
    np.testing.assert_allclose(raw, 2.0)
    for _ in range(3):
        np.testing.assert_allclose(jaxfunc.func.grad(g)(jnp.asarray(3.14)), 2.0)


def test_dict_order_inside_jax_jit() -> None:
    """JAX, not the user, sorted the primal dict's keys inside ``jax.jit``: the tangents
    built outside in the user's order must still be accepted, with the eager result."""
    s = J
    g = M.FAMILIES["mlp"].fn(s)
    params = M._params(s)
    tangents = M.tree_map(lambda p: p * 0.5 + 0.25, params)
    assert list(params) != sorted(params)  # the point of the test
    eager = jaxfunc.func.jvp(g, (params,), (tangents,))
    jitted = jax.jit(lambda p: jaxfunc.func.jvp(g, (p,), (tangents,)))
    for _ in range(3):
        got = jitted(params)
        assert_same(_plain(got), _plain(eager), rtol=1e-12, atol=0)
    if HAVE_TORCH:
        want = outcome(lambda t: t.TF.jvp(M.FAMILIES["mlp"].fn(t), (M._params(t),),
                                          (M.tree_map(lambda p: p * 0.5 + 0.25, M._params(t)),)),
                       TorchSide("float64"))  # fmt: skip
        assert_same(_plain(eager), want, rtol=RTOL, atol=ATOL)


# -- the test's own machinery ---------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_TORCH, reason="checks torch's AF against its torch.func equivalent")
@pytest.mark.parametrize("family", ["elementwise", "reduction", "nograd"])
@pytest.mark.parametrize("call", M.AF_CALLS)
def test_af_equivalents(call: str, family: str) -> None:
    """Where torch refuses AF inside torch.func, the matrix's torch side computes AF's value
    with torch.func (``_TorchAFViaFunc``): outside transforms, it must equal torch's AF."""
    import torch

    s = TorchSide("float64")
    fam = M.FAMILIES[family]
    cell = M.Cell((M.L(call),), family)
    make, args = cell.build(s)
    via_func = _plain(make()(*args))
    ctx = M.Ctx(s, fam, fam.fn(s), fam.tangents(s))
    fn = ctx.scalarized(ctx.base) if call in M.SCALAR_INPUT else ctx.base
    (x,) = args
    real = getattr(torch.autograd.functional, call[3:])
    if call in ("AF.jacobian", "AF.hessian"):
        direct = real(fn, x, create_graph=True)
    elif call in ("AF.jvp", "AF.vhp", "AF.hvp"):
        direct = real(fn, x, ctx.tangents[0], create_graph=True)
    else:
        direct = real(fn, x, fam.cot(s), create_graph=True)
    assert_same(via_func, _plain(direct), rtol=1e-12, atol=1e-14)


def test_every_case_recorded_and_ids_unique() -> None:
    ids = [c.id for c in M.suite()]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert set(ids) == set(RECORD), set(ids) ^ set(RECORD)


def test_matrix_covers_every_pair() -> None:
    pairs = {(c.chain[0].name, c.chain[1].name) for c in M.PAIRS if c.family == "elementwise"}
    assert pairs == {(o, i) for o in M.TRANSFORMS for i in M.TRANSFORMS}
    af = [(c.chain[0].name, c.chain[1].name) for c in M.AF_CELLS]
    assert {o for o, _ in af} == set(M.TRANSFORMS)
    assert {i for _, i in af} == set(M.AF_CALLS)
