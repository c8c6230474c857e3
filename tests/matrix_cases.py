"""The composition matrix's cases (run by test_matrix.py), written once for both sides.

A cell is a chain of transforms, outermost first, applied to one of a few *families* of
functions: ``jacrev(vjp)`` on ``elementwise`` is
``jacrev(lambda x: flat(vjp(f, x)[1](ct)))(x)``. Each level below the outermost turns its
result into one flat array (``flat``), so any transform can sit on top of any other; a level
that needs a scalar (grad, grad_and_value, hessian) gets the family's real scalar of it.

``Cell.build(side)`` makes the user's functions once and returns ``(make, args)``:
``make()`` builds the outermost transform's wrapper (``jacrev(h)``, or a function calling
``vjp(h, ...)``) and ``make()(*args)`` is the result. The three regimes of test_matrix.py
differ only in when ``make()`` is called.

Recorded torch outcomes: ``tests/torch_outcomes_matrix.json`` (``write_record``, run by
``python tests/recorded.py``).
"""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cases import Case

PATH = pathlib.Path(__file__).with_name("torch_outcomes_matrix.json")

TRANSFORMS = (
    "grad",
    "grad_and_value",
    "jacrev",
    "jacfwd",
    "hessian",
    "vmap",
    "linearize",
    "vjp",
    "jvp",
)
AF_CALLS = ("AF.vjp", "AF.jvp", "AF.jacobian", "AF.hessian", "AF.vhp", "AF.hvp")
WRAPPERS = ("grad", "grad_and_value", "jacrev", "jacfwd", "hessian", "vmap")
SCALAR_INPUT = {"grad", "grad_and_value", "hessian", "AF.hessian", "AF.vhp", "AF.hvp"}


# -- pytrees in insertion order (both sides; jax.tree_util would sort dict keys) ----------------


def leaves(tree: Any) -> list[Any]:
    """The leaves, dicts in sorted key order: inside jax.jit/jax.vmap JAX hands jaxfunc dicts
    with sorted keys, and ``flat`` must not depend on that (top-level results are compared
    with their key order; see test_matrix._sorted_if_dict_args)."""
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in leaves(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [x for v in tree for x in leaves(v)]
    return [tree]


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, v) for v in tree)
    return fn(tree)


def flat(s: Any, tree: Any) -> Any:
    """Every leaf of ``tree``, raveled and concatenated: one array, whatever came back."""
    parts = [s.reshape(x, (-1,)) for x in leaves(tree)]
    return parts[0] if len(parts) == 1 else s.cat(parts)


def perturbed(s: Any, tree: Any) -> Any:
    """A second, different example of the same structure (for batches)."""
    return tree_map(lambda x: x * 1.3 - 0.2, tree)


def batch_of(s: Any, args: tuple[Any, ...], in_dims: Any = 0) -> tuple[Any, ...]:
    """Two examples of ``args`` stacked where ``in_dims`` (int, None or a tuple of those)
    says; an argument mapped with None stays as it is."""
    dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
    out = []
    for arg, d in zip(args, dims):
        if d is None:
            out.append(arg)
        else:
            other = perturbed(s, arg)
            out.append(_stack_trees(s, [arg, other], d))
    return tuple(out)


def _stack_trees(s: Any, trees: Sequence[Any], dim: int = 0) -> Any:
    first = trees[0]
    if isinstance(first, dict):
        return {k: _stack_trees(s, [t[k] for t in trees], dim) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_stack_trees(s, [t[i] for t in trees], dim) for i in range(len(first)))
    return s.stack(list(trees), dim)


def stack_results(s: Any, results: Sequence[Any]) -> Any:
    return _stack_trees(s, results, 0)


def unstack(s: Any, args: tuple[Any, ...], n: int) -> list[tuple[Any, ...]]:
    return [tree_map(lambda x, i=i: x[i], args) for i in range(n)]


# -- families of inner functions ----------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    args: Callable[[Any], tuple[Any, ...]]  # side -> the primal arguments
    fn: Callable[[Any], Callable[..., Any]]  # side -> the function (made once per cell)
    tangents: Callable[[Any], tuple[Any, ...]]  # side -> tangents like args
    cot: Callable[[Any], Any]  # side -> a cotangent like fn's output
    is_complex: bool = False

    def scalar(self, s: Any, y: Any) -> Any:
        """A real scalar of ``y`` (what grad/hessian differentiate)."""
        if self.is_complex:
            return s.sum(s.real(y * s.conj(y)))
        return s.sum(y)


def _x(s: Any) -> Any:
    return s.t([0.3, -0.7, 1.1])


def _v(s: Any) -> Any:
    return s.t([1.0, 2.0, -1.0])


def _elementwise(s: Any) -> Callable[..., Any]:
    def f(x: Any) -> Any:
        return s.sin(x) * x**2

    return f


def _reduction(s: Any) -> Callable[..., Any]:
    def f(x: Any) -> Any:
        return s.sum(s.tanh(x) ** 2 * x)

    return f


def _params(s: Any) -> dict[str, Any]:
    # insertion order w1, b1, w2 is not sorted: JAX's own flattening would reorder it
    return {
        "w1": s.t([[0.5, -0.3, 0.8], [0.1, 0.7, -0.6]]),
        "b1": s.t([0.2, -0.1]),
        "w2": s.t([1.5, -0.5]),
    }


def _mlp(s: Any) -> Callable[..., Any]:
    data = s.t([0.4, -1.2, 0.9])

    def f(p: Any) -> Any:
        return s.tanh(s.matmul(p["w1"], data) + p["b1"]) * p["w2"]

    return f


def _two_inputs(s: Any) -> Callable[..., Any]:
    def f(x: Any, y: Any) -> Any:
        return s.sin(x) * y + x * y**2

    return f


def _z(s: Any) -> Any:
    return s.t([0.3 + 0.2j, -0.7 + 0.5j, 1.1 - 0.4j])


def _complex(s: Any) -> Callable[..., Any]:
    def f(z: Any) -> Any:
        return s.sin(z) * z

    return f


def _nograd(s: Any) -> Callable[..., Any]:
    def f(x: Any) -> Any:
        with s.no_grad():
            c = x**2
        return s.sin(x) * c + x

    return f


def _pair(s: Any) -> Callable[..., Any]:
    def f(xy: Any) -> Any:
        x, y = xy
        return s.cos(x) * y

    return f


FAMILIES = {
    fam.name: fam
    for fam in [
        Family("elementwise", lambda s: (_x(s),), _elementwise, lambda s: (_v(s),),
               lambda s: s.t([0.5, -1.0, 2.0])),
        Family("reduction", lambda s: (_x(s),), _reduction, lambda s: (_v(s),),
               lambda s: s.t(1.5)),
        Family("mlp", lambda s: (_params(s),), _mlp,
               lambda s: (tree_map(lambda p: p * 0.5 + 0.25, _params(s)),),
               lambda s: s.t([0.7, -1.1])),
        Family("two_inputs", lambda s: (_x(s), s.t([1.2, 0.4, -0.9])), _two_inputs,
               lambda s: (_v(s), s.t([0.3, -0.2, 0.6])), lambda s: s.t([0.5, -1.0, 2.0])),
        Family("complex", lambda s: (_z(s),), _complex,
               lambda s: (s.t([1.0 - 0.5j, 0.2 + 1.0j, -1.0 + 0.0j]),),
               lambda s: s.t([0.5 + 0.5j, -1.0 + 0.0j, 0.3 - 2.0j]), is_complex=True),
        Family("nograd", lambda s: (_x(s),), _nograd, lambda s: (_v(s),),
               lambda s: s.t([0.5, -1.0, 2.0])),
        Family("scalar", lambda s: (s.t(0.7),), _elementwise, lambda s: (s.t(1.5),),
               lambda s: s.t(-0.5)),
        # one tuple argument: a tuple pytree as a primal
        Family("tuple_input", lambda s: ((_x(s), s.t([1.2, 0.4, -0.9])),), _pair,
               lambda s: ((_v(s), s.t([0.3, -0.2, 0.6])),), lambda s: s.t([0.5, -1.0, 2.0])),
    ]
}  # fmt: skip


# -- one level of a chain -----------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One transform of a chain. Below the outermost, a level is either used inside a
    function the level above transforms (``jacrev(lambda x: flat(vjp(f, x)...))``, the
    default; ``raw``: without ``flat``) or, for the transforms that return a wrapper, handed
    up as it is (``direct``: ``vmap(hessian(f))``). ``plain``: a grad/grad_and_value/hessian
    level takes its function as it is, unscalarized (``grad(grad(f))`` of a scalar f)."""

    name: str  # a transform of TRANSFORMS or an autograd.functional call of AF_CALLS
    opts: tuple[tuple[str, Any], ...] = ()
    raw: bool = False
    direct: bool = False
    plain: bool = False

    def label(self, top: bool = False) -> str:
        inside = not (top or self.direct) and self.name in WRAPPERS
        name = f"lambda:{self.name}" if inside else self.name
        if not self.opts:
            return name
        return f"{name}[{','.join(f'{k}={v!r}' for k, v in self.opts)}]"

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.opts)


def L(name: str, **opts: Any) -> Level:
    flags = {k: opts.pop(k) for k in ("raw", "direct", "plain") if k in opts}
    return Level(name, tuple(opts.items()), **flags)


def D(name: str, **opts: Any) -> Level:
    """A level handed up as it is: ``vmap(hessian(f))``."""
    return L(name, direct=True, **opts)


def _aux(s: Any, args: tuple[Any, ...]) -> Any:
    # depends on the input, so an outer transform sees it move
    return s.cos(leaves(args)[0])


class _TorchAFViaFunc:
    """torch refuses ``torch.autograd.functional`` inside torch.func transforms (RuntimeError
    "You are attempting to call Tensor.requires_grad_() ... inside of a function being
    transformed by a functorch transform"). The matrix compares jaxfunc's AF calls there
    with what torch's AF gives outside transforms, computed here with torch.func in the same
    mode as torch's AF (reverse mode throughout: AF honours no_grad at every level, so
    jvp/hvp are double-backward, hessian is reverse over reverse). Single input only.
    ``test_matrix.test_af_equivalents`` checks each against torch's AF outside transforms.
    """

    def __init__(self, s: Any) -> None:
        self.s = s

    def vjp(self, f: Any, x: Any, v: Any, create_graph: bool = False) -> Any:
        out, fn = self.s.TF.vjp(f, x)
        return out, fn(v)[0]

    def jvp(self, f: Any, x: Any, v: Any, create_graph: bool = False) -> Any:
        TF = self.s.TF
        out, fn = TF.vjp(f, x)
        # the vjp is linear in u: its transpose at any u is the jvp, all in reverse mode
        _, back = TF.vjp(lambda u: fn(u)[0], self.s.zeros_like(out))
        return out, back(v)[0]

    def jacobian(self, f: Any, x: Any, create_graph: bool = False) -> Any:
        return self.s.TF.jacrev(f)(x)

    def hessian(self, f: Any, x: Any, create_graph: bool = False) -> Any:
        return self.s.TF.jacrev(self.s.TF.jacrev(f))(x)

    def vhp(self, f: Any, x: Any, v: Any, create_graph: bool = False) -> Any:
        TF = self.s.TF
        _, fn = TF.vjp(TF.grad(f), x)
        return f(x), fn(v)[0]

    def hvp(self, f: Any, x: Any, v: Any, create_graph: bool = False) -> Any:
        TF = self.s.TF
        jac = TF.jacrev(TF.grad(f))(x)
        return f(x), self.s.tensordot(jac, v, dims=v.ndim)


def linearized(s: Any, g: Any, primals: Any, tangents: Any, **kw: Any) -> Any:
    """``(out, jvp_fn(*tangents))`` of ``linearize(g, *primals)``.

    torch 2.13's linearize traces ``jvp_fn`` once (make_fx over torch.autograd.forward_ad),
    and does not compose: under jvp/jacfwd/hessian it raises "Nested forward mode AD is not
    supported at the moment", under vmap "Batching rule not implemented for
    aten::_make_dual"; under grad/vjp ``jvp_fn``'s output is cut off from the primal (zeros,
    or uninitialized memory: 1e-309 values for ``grad(lambda x: linearize(f, x)[1](v).sum())``),
    and over jacrev ``jvp_fn`` returns zeros (``linearize(lambda x: jacrev(f)(x).ravel(), x)``).
    jaxfunc's linearize composes like every other transform, so the matrix holds it to
    linearize's meaning, ``(f(x), jvp(f, x, t))``, computed on the torch side by
    torch.func.jvp (which composes). Standalone linearize is compared with torch's own in
    tests/cases.py.
    """
    if s.name == "torch":
        return s.TF.jvp(g, tuple(primals), tuple(tangents))
    out, jvp_fn = s.TF.linearize(g, *primals, **kw)
    return out, jvp_fn(*tangents)


def af_for(s: Any) -> Any:
    return _TorchAFViaFunc(s) if s.name == "torch" else s.AF


@dataclass
class Ctx:
    s: Any
    fam: Family
    base: Callable[..., Any]
    tangents: tuple[Any, ...]

    def scalarized(self, g: Callable[..., Any], has_aux: bool = False) -> Callable[..., Any]:
        s, fam = self.s, self.fam

        def fn(*a: Any) -> Any:
            y = fam.scalar(s, g(*a))
            return (y, _aux(s, a)) if has_aux else y

        return fn

    def with_aux(self, g: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *a: (g(*a), _aux(self.s, a))


def prepare(ctx: Ctx, level: Level, g: Callable[..., Any]) -> Callable[..., Any]:
    """The function ``level``'s transform is applied to: ``g``, or its real scalar (for
    grad, grad_and_value, hessian, AF.hessian/vhp/hvp), with ``has_aux``'s aux added.
    Made once per user function, so a cached transform sees the same function again."""
    has_aux = bool(level.kwargs.get("has_aux"))
    if level.name in SCALAR_INPUT and not level.plain:
        return ctx.scalarized(g, has_aux)
    return ctx.with_aux(g) if has_aux else g


def wrap(ctx: Ctx, level: Level, fn: Callable[..., Any], base: bool) -> Callable[..., Any]:
    """The callable of ``level`` applied to ``fn`` (from :func:`prepare`; ``base``: the
    family's own function): a transform's own wrapper where torch has one (``grad(fn)``),
    else a function that calls the transform (``vjp(fn, *args)``)."""
    s, TF, name, kw = ctx.s, ctx.s.TF, level.name, level.kwargs
    if name in WRAPPERS:
        return getattr(TF, name)(fn, **kw)
    if base:
        cot_of = lambda out: ctx.fam.cot(s)
    else:
        cot_of = lambda out: tree_map(s.ones_like, out)
    if name == "vjp":

        def call_vjp(*a: Any) -> Any:
            out, vjp_fn, *aux = TF.vjp(fn, *a, **kw)
            return (out, vjp_fn(cot_of(out)), *aux)

        return call_vjp
    if name == "jvp":
        return lambda *a: TF.jvp(fn, a, ctx.tangents, **kw)
    if name == "linearize":
        return lambda *a: linearized(s, fn, a, ctx.tangents, **kw)
    if name in AF_CALLS:
        call = getattr(af_for(s), name[3:])

        def call_af(*a: Any) -> Any:
            (x,) = a
            if name in ("AF.jacobian", "AF.hessian"):
                return call(fn, x, create_graph=True)
            v = ctx.tangents[0] if name in ("AF.jvp", "AF.vhp", "AF.hvp") else cot_of(fn(x))
            return call(fn, x, v, create_graph=True)

        return call_af
    raise ValueError(name)


def applied(ctx: Ctx, level: Level, g: Callable[..., Any]) -> Callable[..., Any]:
    return wrap(ctx, level, prepare(ctx, level, g), g is ctx.base)


# -- cells --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    chain: tuple[Level, ...]  # outermost first
    family: str
    messages: bool = True

    @property
    def id(self) -> str:
        labels = [lv.label(top=i == 0) for i, lv in enumerate(self.chain)]
        return "(".join(labels) + ")" * (len(labels) - 1) + f"-{self.family}"

    def args(self, s: Any) -> tuple[Any, ...]:
        fam = FAMILIES[self.family]
        args = fam.args(s)
        top = self.chain[0]
        if top.name == "vmap":
            return batch_of(s, args, top.kwargs.get("in_dims", 0))
        return args

    def build(self, s: Any) -> tuple[Callable[[], Callable[..., Any]], tuple[Any, ...]]:
        fam = FAMILIES[self.family]
        ctx = Ctx(s, fam, fam.fn(s), fam.tangents(s))
        top, below = self.chain[0], self.chain[1:]
        # the direct levels right under the top are wrappers the user builds with the top
        # one (in the fresh regime: afresh at each call); the functions below them are the
        # user's, made once
        k = 0
        while k < len(below) and below[k].direct:
            k += 1
        g = ctx.base
        for level in reversed(below[k:]):
            g = applied(ctx, level, g) if level.direct else _level_fn(ctx, level, g)
        fixed = g
        top_fn = prepare(ctx, top, fixed)

        def make() -> Callable[..., Any]:
            if not k:
                return wrap(ctx, top, top_fn, fixed is ctx.base)
            h = fixed
            for level in reversed(below[:k]):
                h = applied(ctx, level, h)
            return applied(ctx, top, h)

        return make, self.args(s)

    def body(self, s: Any) -> Any:
        """The cell's result, called once (torch's outcome; jaxfunc's in its regimes)."""
        make, args = self.build(s)
        return make()(*args)


def _level_fn(ctx: Ctx, level: Level, g: Callable[..., Any]) -> Callable[..., Any]:
    # the inner transform is built afresh at every call, as users write it
    if level.raw:
        return lambda *a: applied(ctx, level, g)(*a)
    return lambda *a: flat(ctx.s, applied(ctx, level, g)(*a))


@dataclass(frozen=True)
class BatchedCell:
    """A cell under an outer ``jax.vmap`` over a batch of two examples; torch's outcome is
    each example's result, stacked."""

    cell: Cell

    @property
    def id(self) -> str:
        return f"{self.cell.id}-jax.vmap"

    @property
    def messages(self) -> bool:
        return self.cell.messages

    def batch(self, s: Any) -> tuple[Any, ...]:
        return batch_of(s, self.cell.args(s))

    def body(self, s: Any) -> Any:
        make, _ = self.cell.build(s)
        examples = unstack(s, self.batch(s), 2)
        return stack_results(s, [make()(*ex) for ex in examples])


# -- the matrix: which cells ----------------------------------------------------------------------

OTHER_FAMILIES = ("reduction", "mlp", "two_inputs", "complex", "nograd")
NEEDS_SCALAR = ("grad", "grad_and_value", "hessian")


def _pairs() -> list[Cell]:
    # every ordered pair on the elementwise function, the inner one handed up as it is where
    # it can be (a wrapper under a transform that takes any output: ``vmap(hessian(f))``),
    # else used inside the function the outer one transforms
    cells = []
    for o, i in itertools.product(TRANSFORMS, TRANSFORMS):
        direct = i in WRAPPERS and o not in NEEDS_SCALAR
        cells.append(Cell((L(o), L(i, direct=direct)), "elementwise"))
    # ... the same wrappers inside a function, for a few
    for o, i in [
        ("vmap", "hessian"),
        ("jacrev", "jacfwd"),
        ("jacfwd", "vmap"),
        ("vjp", "grad"),
        ("jvp", "jacrev"),
        ("linearize", "grad_and_value"),
    ]:
        cells.append(Cell((L(o), L(i)), "elementwise"))
    # grad of a wrapper, as it is: needs a scalar function of a scalar
    for o in NEEDS_SCALAR:
        cells.append(Cell((L(o, plain=True), D("grad", plain=True)), "scalar"))
    # the other families on five pairs each (inner used inside a function): a Latin
    # square's rows, so across the families every outer transform meets other inner ones
    n = len(TRANSFORMS)
    for k, fam in enumerate(OTHER_FAMILIES, start=1):
        for j, outer in enumerate(TRANSFORMS):
            if (j + 2 * k) % n < 5:
                cells.append(Cell((L(outer), L(TRANSFORMS[(j + 2 * k) % n])), fam))
    return cells


def _af() -> list[Cell]:
    cells = []
    n = len(TRANSFORMS)
    for k, call in enumerate(AF_CALLS):
        # each autograd.functional call under four outer transforms (rotating)
        for j in range(4):
            cells.append(Cell((L(TRANSFORMS[(2 * k + j * 2) % n]), L(call)), "elementwise"))
        cells.append(Cell((L(TRANSFORMS[(k + 1) % n]), L(call)), "reduction"))
        cells.append(Cell((L(TRANSFORMS[(k + 4) % n]), L(call)), "nograd"))
    return cells


def _variations() -> list[Cell]:
    V = Cell
    return [
        # argnums int / tuple
        V((L("jacrev"), L("grad", argnums=(0, 1))), "two_inputs"),
        V((L("grad", argnums=(0, 1)), L("jacfwd")), "two_inputs"),
        V((L("jacrev", argnums=1), L("vjp")), "two_inputs"),
        V((L("vmap"), D("jacrev", argnums=(0, 1))), "two_inputs"),
        V((L("jacfwd", argnums=(0, 1)), D("hessian", argnums=1)), "two_inputs"),
        V((L("grad_and_value", argnums=1), L("grad", argnums=0)), "two_inputs"),
        # has_aux, inner and outer
        V((L("jacrev"), L("grad", has_aux=True)), "elementwise"),
        V((L("jacrev", has_aux=True), L("vmap")), "elementwise"),
        V((L("grad_and_value", has_aux=True), L("hessian")), "elementwise"),
        V((L("grad"), L("vjp", has_aux=True)), "elementwise"),
        V((L("jacfwd"), L("jvp", has_aux=True)), "elementwise"),
        V((L("vmap"), L("jacfwd", has_aux=True)), "mlp"),
        V((L("vjp", has_aux=True), L("grad_and_value", has_aux=True)), "elementwise"),
        # chunk_size
        V((L("jacrev", chunk_size=1), D("jacfwd")), "elementwise"),
        V((L("vmap"), D("jacrev", chunk_size=2)), "elementwise"),
        V((L("vmap", chunk_size=1), D("grad")), "elementwise"),
        V((L("jacrev"), D("vmap", chunk_size=2)), "elementwise"),
        V((L("jacrev", chunk_size=2), L("vjp")), "mlp"),
        # in_dims / out_dims: None, tuples
        V((L("vmap", in_dims=(0, None)), D("grad")), "two_inputs"),
        V((L("vmap", in_dims=(None, 0)), L("jacrev")), "two_inputs"),
        V((L("vmap", in_dims=(0, 0), out_dims=1), L("jvp")), "two_inputs"),
        V((L("vmap", out_dims=(0, 1)), L("jvp", raw=True)), "elementwise"),
        V((L("vmap", out_dims=(1, None)), L("grad_and_value", raw=True)), "elementwise"),
        V((L("jacrev"), D("vmap", in_dims=(0, None))), "two_inputs"),
        V((L("vmap", in_dims=1), D("grad")), "elementwise"),
        # dict and tuple pytrees
        V((L("jacrev"), D("grad")), "mlp"),
        V((L("vmap"), L("vjp")), "mlp"),
        V((L("jvp"), D("jacrev")), "mlp"),
        V((L("linearize"), L("grad")), "mlp"),
        V((L("jacfwd"), L("vjp")), "tuple_input"),
        V((L("vmap"), L("jvp")), "tuple_input"),
        V((L("vjp"), D("hessian")), "tuple_input"),
    ]


def _triples() -> list[Cell]:
    return [
        Cell((L("vmap"), D("jacrev"), D("jacfwd")), "elementwise"),
        Cell((L("jacfwd"), D("vmap"), D("grad")), "elementwise"),
        Cell((L("grad", plain=True), D("grad", plain=True), D("grad", plain=True)), "scalar"),
        Cell((L("grad"), L("grad"), L("grad")), "reduction"),
        Cell((L("hessian"), L("vjp"), L("jvp")), "elementwise"),
        Cell((L("vmap"), D("vmap"), D("grad")), "elementwise"),
        Cell((L("jacrev"), L("linearize"), D("hessian")), "elementwise"),
        Cell((L("vjp"), L("jvp"), L("grad_and_value")), "mlp"),
        Cell((L("vmap"), D("hessian"), L("AF.jvp")), "elementwise"),
    ]


PAIRS = _pairs()
AF_CELLS = _af()
VARIATIONS = _variations()
TRIPLES = _triples()
CELLS = PAIRS + AF_CELLS + VARIATIONS + TRIPLES

# a sample under an outer jax.vmap: one cell per outer transform, each with a different inner
BATCHED = [
    BatchedCell(Cell((L(o), L(i, direct=i in WRAPPERS and o not in NEEDS_SCALAR)), "elementwise"))
    for o, i in [
        ("grad", "vjp"),
        ("grad_and_value", "jvp"),
        ("jacrev", "grad"),
        ("jacfwd", "jacrev"),
        ("hessian", "linearize"),
        ("vmap", "hessian"),
        ("linearize", "vmap"),
        ("vjp", "jacfwd"),
        ("jvp", "grad_and_value"),
    ]
] + [
    BatchedCell(Cell((L("jacrev"), D("grad")), "mlp")),
    BatchedCell(Cell((L("grad"), L("AF.hvp")), "reduction")),
]


# -- the defects, each a named case ---------------------------------------------------------

DEFECTS: list[Case] = []


def defect(label: str, messages: bool = True) -> Callable[[Callable], Callable]:
    def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        DEFECTS.append(Case("matrix defects", label, fn, messages))
        return fn

    return deco


def _g(s: Any) -> Callable[[Any], Any]:
    return lambda x: s.sum(s.cos(x) ** 2)


@defect("vmap(jacfwd(sin))(ones(2,3))")
def _vmap_jacfwd(s: Any) -> Any:
    return s.TF.vmap(s.TF.jacfwd(s.sin))(s.ones(2, 3))


@defect("jacrev(jacfwd(f))")
def _jacrev_jacfwd(s: Any) -> Any:
    return s.TF.jacrev(s.TF.jacfwd(_elementwise(s)))(_x(s))


@defect("jacfwd(jacfwd(f))")
def _jacfwd_jacfwd(s: Any) -> Any:
    return s.TF.jacfwd(s.TF.jacfwd(_elementwise(s)))(_x(s))


@defect("vmap(hessian(f))")
def _vmap_hessian(s: Any) -> Any:
    return s.TF.vmap(s.TF.hessian(_g(s)))(s.t([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]))


@defect("vjp(jacfwd(f))")
def _vjp_jacfwd(s: Any) -> Any:
    out, fn = s.TF.vjp(s.TF.jacfwd(_elementwise(s)), _x(s))
    return out, fn(s.eye(3))


@defect("jvp(jacfwd(f))")
def _jvp_jacfwd(s: Any) -> Any:
    return s.TF.jvp(s.TF.jacfwd(_elementwise(s)), (_x(s),), (_v(s),))


@defect("linearize(jacfwd(f))")
def _linearize_jacfwd(s: Any) -> Any:
    # torch: RuntimeError "Nested forward mode AD is not supported at the moment": compared
    # with linearize's meaning, computed by torch's jvp (see ``linearized``)
    return linearized(s, s.TF.jacfwd(_elementwise(s)), (_x(s),), (_v(s),))


@defect("AF.jacobian(jacfwd(f), x)")
def _af_jacobian_jacfwd(s: Any) -> Any:
    return s.AF.jacobian(s.TF.jacfwd(_elementwise(s)), _x(s))


@defect("grad of vjp made inside no_grad, pullback outside")
def _nograd_vjp_outside(s: Any) -> Any:
    # torch's test_no_grad_outside_vjp_only: 2.0
    def g(a: Any) -> Any:
        with s.no_grad():
            _, vjp_fn = s.TF.vjp(lambda t: t**2, a)
        return vjp_fn(s.t(1.0))[0]

    return s.TF.grad(g)(s.t(3.14))


def _if_sum(s: Any) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        if x.sum() > 0:
            return s.sin(x) * 2
        return x**3

    return f


def _item(s: Any) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        return x * x.sum().item()

    return f


def _int_loop(s: Any) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        y = x
        for _ in range(int(x[0]) + 1):
            y = s.sin(y) * x
        return y

    return f


VALUE_DEPENDENT = {"if x.sum() > 0": _if_sum, ".item()": _item, "int(x) loop count": _int_loop}


def _af_jvp_3_calls(make: Callable[[Any], Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def body(s: Any) -> Any:
        f = make(s)  # one function object, so the 2nd and 3rd calls can hit the cache
        x, v = s.t([1.5, 0.5, -0.25]), _v(s)
        return [s.AF.jvp(f, x, v) for _ in range(3)]

    return body


for _label, _make in VALUE_DEPENDENT.items():
    defect(f"AF.jvp of a value-dependent function ({_label}), 3 calls")(_af_jvp_3_calls(_make))


def _bad_after_good(
    label: str, fn: Callable[[Any], Any], call: Callable[[Any, Any, Any], Any], good: Any, bad: Any
) -> None:
    def body(s: Any) -> Any:
        f = fn(s)  # one function object: the valid calls may compile a program for it
        first = [call(s, f, good) for _ in range(2)]
        try:  # ... and the invalid option must still be refused
            second: Any = call(s, f, bad)
        except Exception as e:
            second = (type(e).__name__, str(e))
        return first, second

    defect(label)(body)


def _X(s: Any) -> Any:
    return s.ones(2, 3)


def _sin(s: Any) -> Any:
    return s.sin


_bad_after_good(
    "vmap(grad(g, argnums=0)) then argnums=0.0",
    _g,
    lambda s, f, o: s.TF.vmap(s.TF.grad(f, argnums=o))(_X(s)),
    0,
    0.0,
)
_bad_after_good(
    "jacrev(vmap(f, in_dims=0)) then in_dims=0.0",
    _sin,
    lambda s, f, o: s.TF.jacrev(s.TF.vmap(f, in_dims=o))(_X(s)),
    0,
    0.0,
)
_bad_after_good(
    "jacrev(vmap(f, out_dims=0)) then out_dims=0.0",
    _sin,
    lambda s, f, o: s.TF.jacrev(s.TF.vmap(f, out_dims=o))(_X(s)),
    0,
    0.0,
)
_bad_after_good(
    "jacrev(g, argnums=0) then argnums=0.0",
    _g,
    lambda s, f, o: s.TF.jacrev(f, argnums=o)(_X(s)),
    0,
    0.0,
)
_bad_after_good(
    "vmap(jacrev(f, chunk_size=1)) then chunk_size=1.0",
    _sin,
    lambda s, f, o: s.TF.vmap(s.TF.jacrev(f, chunk_size=o))(_X(s)),
    1,
    1.0,
)
_bad_after_good(
    "vmap(vmap(f, chunk_size=1)) then chunk_size=1.0",
    _sin,
    lambda s, f, o: s.TF.vmap(s.TF.vmap(f, chunk_size=o))(_X(s)),
    1,
    1.0,
)


def _vd(x: Any) -> Any:
    if (x * x).sum() > 1:
        return x * 2
    return x


@defect("vmap of a value-dependent function")
def _vmap_value_dependent(s: Any) -> Any:
    return s.TF.vmap(_vd)(_X(s))


# -- the record ------------------------------------------------------------------------------------


def suite() -> list[Any]:
    """Every case whose torch outcome is recorded (regimes share their cell's outcome)."""
    return [*CELLS, *BATCHED, *DEFECTS]


def load() -> dict[str, Any]:
    return json.loads(PATH.read_text()) if PATH.exists() else {}


def write_record() -> None:
    from oracle import TorchSide, outcome
    from recorded import encode

    side = TorchSide("float64")
    data = {case.id: encode(outcome(case.body, side)) for case in suite()}
    PATH.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(data)} outcomes to {PATH}")
