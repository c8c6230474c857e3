"""functional_call, stack_module_state, named_parameters/named_buffers against torch 2.13.

The same weights go into a torch ``nn.Module`` and into an Equinox and a Flax NNX module
with the same names; outputs, per-sample gradients, ensembles, NTKs and errors are compared
with torch's. Without torch (the newest legs), torch's outcomes come from
``tests/modules_torch.json`` (``python tests/test_modules.py`` rewrites it from a live torch;
with torch installed every test also checks the record against the live run).
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxfunc
from jaxfunc._jit import _cache
from jaxfunc.func import (
    functional_call,
    grad,
    jacrev,
    named_buffers,
    named_parameters,
    stack_module_state,
    vjp,
    vmap,
)

try:
    import torch
    import torch.nn as tnn
except ImportError:  # the newest legs: the recorded outcomes stand in
    torch = None

RECORD_PATH = pathlib.Path(__file__).with_name("modules_torch.json")
RECORDED: dict[str, Any] = json.loads(RECORD_PATH.read_text()) if RECORD_PATH.exists() else {}

IN, HIDDEN, OUT, BATCH, MODELS = 4, 8, 3, 5, 3


def weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "fc1.weight": rng.standard_normal((HIDDEN, IN)),
        "fc1.bias": rng.standard_normal(HIDDEN),
        "fc2.weight": rng.standard_normal((OUT, HIDDEN)),
        "fc2.bias": rng.standard_normal(OUT),
    }


def tied_weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s) for n, s in (("a.weight", (3, 3)), ("a.bias", 3))} | {
        "b.bias": rng.standard_normal(3)
    }


DATA = np.random.default_rng(100).standard_normal((BATCH, IN))
TARGETS = np.array([0, 2, 1, 1, 0])
NEW = weights(7)  # the values functional_call substitutes
STEPS = 2  # the integer buffer both models multiply their output by

# -- torch's side ----------------------------------------------------------------------------


_CLASSES: dict[str, Any] = {}


def _once(make: Any) -> Any:
    """The class ``make`` builds, built once (stack_module_state compares classes)."""
    if make.__name__ not in _CLASSES:
        _CLASSES[make.__name__] = make()
    return _CLASSES[make.__name__]


def _torch_net_class() -> Any:
    class Net(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = tnn.Linear(IN, HIDDEN)
            self.fc2 = tnn.Linear(HIDDEN, OUT)
            self.register_buffer("steps", torch.tensor(STEPS))

        def forward(self, x: Any, scale: float = 1.0) -> Any:
            out = self.fc2(torch.relu(self.fc1(x))) * self.steps * scale
            return torch.log_softmax(out, dim=-1)

    return Net


def torch_net(seed: int) -> Any:
    net = _once(_torch_net_class)().double()
    with torch.no_grad():
        for name, value in weights(seed).items():
            net.get_parameter(name).copy_(torch.from_numpy(value))
    return net


def _torch_tied_class() -> Any:
    class Net(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tnn.Linear(3, 3)
            self.b = tnn.Linear(3, 3)
            self.b.weight = self.a.weight

        def forward(self, x: Any) -> Any:
            return self.b(torch.tanh(self.a(x)))

    return Net


def torch_tied(seed: int) -> Any:
    net = _once(_torch_tied_class)().double()
    with torch.no_grad():
        for name, value in tied_weights(seed).items():
            net.get_parameter(name).copy_(torch.from_numpy(value))
    return net


def _t(d: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in d.items()}


def _nll(logp: Any, target: Any, lib: Any) -> Any:
    if lib == "torch":
        return torch.nn.functional.nll_loss(logp, target)
    return -jnp.take_along_axis(logp, target[:, None], axis=-1).mean()


# Each torch case returns numpy arrays (or a dict/tuple of them); an exception is recorded.
TORCH_CASES: dict[str, Any] = {}


def torch_case(fn: Any) -> Any:
    TORCH_CASES[fn.__name__] = fn
    return fn


@torch_case
def names() -> Any:
    net = torch_net(0)
    return {
        "params": list(dict(net.named_parameters())),
        "buffers": list(dict(net.named_buffers())),
        "tied": list(dict(torch_tied(0).named_parameters())),
        "tied_all": list(dict(torch_tied(0).named_parameters(remove_duplicate=False))),
    }


@torch_case
def call_one_dict() -> Any:
    return torch.func.functional_call(torch_net(0), _t(NEW), (torch.from_numpy(DATA),))


@torch_case
def call_two_dicts_kwargs() -> Any:
    net = torch_net(0)
    bufs = {"steps": torch.tensor(3)}
    x = torch.from_numpy(DATA)
    return torch.func.functional_call(net, (_t(NEW), bufs), x, {"scale": 0.5})


@torch_case
def call_partial() -> Any:
    part = {"fc2.weight": torch.from_numpy(NEW["fc2.weight"])}
    return torch.func.functional_call(torch_net(0), part, torch.from_numpy(DATA))


def _torch_loss(params: Any, buffers: Any, sample: Any, target: Any) -> Any:
    pred = torch.func.functional_call(NET_FOR_LOSS[0], (params, buffers), (sample.unsqueeze(0),))
    return torch.nn.functional.nll_loss(pred, target.unsqueeze(0))


NET_FOR_LOSS: list[Any] = []


@torch_case
def per_sample_grads() -> Any:
    net = torch_net(0)
    NET_FOR_LOSS[:] = [net]
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    g = torch.func.vmap(torch.func.grad(_torch_loss), in_dims=(None, None, 0, 0))(
        params, buffers, torch.from_numpy(DATA), torch.from_numpy(TARGETS)
    )
    return dict(g)


@torch_case
def ensemble() -> Any:
    models = [torch_net(s) for s in range(MODELS)]
    params, buffers = torch.func.stack_module_state(models)
    base = torch_net(0)

    def fmodel(p: Any, b: Any, x: Any) -> Any:
        return torch.func.functional_call(base, (p, b), (x,))

    out = torch.func.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, torch.from_numpy(DATA))
    return {
        "out": out,
        "params": {k: v.detach() for k, v in params.items()},
        "buffers": dict(buffers),
    }


@torch_case
def ntk() -> Any:
    net = torch_net(0)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def f(p: Any, x: Any) -> Any:
        return torch.func.functional_call(net, p, (x,))

    x1, x2 = torch.from_numpy(DATA[:2]), torch.from_numpy(DATA[2:])
    j1 = torch.func.jacrev(f)(params, x1)
    j2 = torch.func.jacrev(f)(params, x2)
    return sum(torch.einsum("Naf,Mbf->NMab", j1[k].flatten(2), j2[k].flatten(2)) for k in j1)


@torch_case
def tied_replaces_all() -> Any:
    w = {"a.weight": torch.from_numpy(NEW["fc1.weight"][:3, :3].copy())}
    x = torch.from_numpy(DATA[:, :3].copy())
    net = torch_tied(0)
    return (
        torch.func.functional_call(net, w, x),
        torch.func.functional_call(net, w, x, tie_weights=False),
        torch.func.functional_call(net, {**w, "b.weight": w["a.weight"]}, x),
    )


@torch_case
def tied_strict_ok() -> Any:
    w = {k: torch.from_numpy(v) for k, v in tied_weights(5).items()}
    return torch.func.functional_call(torch_tied(0), w, torch.from_numpy(DATA[:, :3].copy()))


# The error cases: (model kind, dicts, kwargs); the torch and JAX sides build the same call.
ERRORS: dict[str, tuple[str, Any, dict[str, Any]]] = {
    "err_repeated": ("net", lambda a: ({"fc1.bias": a}, {"fc1.bias": a}), {}),
    "err_not_dicts": ("net", lambda a: [{"fc1.bias": a}, 3], {}),
    "err_not_a_dict": ("net", lambda a: 5, {}),
    "err_strict": ("net", lambda a: {"fc1.bias": a, "zz": a}, {"strict": True}),
    "err_no_submodule": ("net", lambda a: {"nope.weight": a}, {}),
    "err_not_tensor_value": ("net", lambda a: {"fc1.bias": 3.0}, {}),
    "err_not_tensor_attr": ("net", lambda a: {"fc1.in_features": a}, {}),
    "err_through_tensor": ("net", lambda a: {"fc1.weight.x": a}, {}),
    "err_tied_values": ("tied", lambda a: {"a.weight": a, "b.weight": a + 1}, {}),
}


def _error_args(lib: str) -> tuple[Any, Any]:
    if lib == "torch":
        return torch.ones(3, dtype=torch.float64), torch.from_numpy(DATA[:, :3].copy())
    return jnp.ones(3), jnp.asarray(DATA[:, :3])


def _error_call(name: str, lib: str, make: Any) -> Any:
    kind, dicts, kwargs = ERRORS[name]
    a, x = _error_args(lib)
    if kind == "net":
        x = torch.from_numpy(DATA) if lib == "torch" else jnp.asarray(DATA)
    model = make(kind)
    call = torch.func.functional_call if lib == "torch" else functional_call
    return call(model, dicts(a), (x,), **kwargs)


for _name in ERRORS:
    TORCH_CASES[_name] = lambda name=_name: _error_call(
        name, "torch", lambda k: torch_net(0) if k == "net" else torch_tied(0)
    )


@torch_case
def stack_errors() -> Any:
    out = []
    for models in ([], [tnn.Linear(2, 2), torch_net(0)], [tnn.Linear(2, 2), tnn.Linear(3, 2)]):
        try:
            torch.func.stack_module_state(models)
        except Exception as e:
            out.append([type(e).__name__, str(e)])
    return out


def _encode(value: Any) -> Any:
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    if isinstance(value, np.ndarray):
        return {"array": [str(value.dtype), list(value.shape), value.tolist()]}
    if isinstance(value, dict):
        return {"dict": [[k, _encode(v)] for k, v in value.items()]}
    if isinstance(value, (tuple, list)):
        return {"list": [_encode(v) for v in value]}
    return {"value": value}


def _decode(data: Any) -> Any:
    ((kind, body),) = data.items()
    if kind == "array":
        return np.asarray(body[2], dtype=body[0]).reshape(body[1])
    if kind == "dict":
        return {k: _decode(v) for k, v in body}
    if kind == "list":
        return [_decode(v) for v in body]
    return body


def _run_torch(name: str) -> Any:
    try:
        return _encode(TORCH_CASES[name]())
    except Exception as e:
        return {"raised": [type(e).__name__, str(e)]}


def torch_outcome(name: str) -> Any:
    """torch's outcome of a case: live when torch is installed (the record must agree),
    recorded otherwise. Raised errors come back as ``("raised", class name, message)``."""
    if name not in RECORDED:
        pytest.fail(f"no recorded torch outcome for {name!r}: run python tests/test_modules.py")
    record = RECORDED[name]
    if torch is not None:
        live = _run_torch(name)
        assert json.dumps(live, sort_keys=True) == json.dumps(record, sort_keys=True), (
            f"tests/modules_torch.json is stale for {name!r}: run python tests/test_modules.py"
        )
    if "raised" in record:
        return ("raised", *record["raised"])
    return _decode(record)


# -- the JAX modules -------------------------------------------------------------------------

try:
    import equinox as eqx
except ImportError:
    eqx = None
try:
    from flax import nnx
except ImportError:
    nnx = None
if eqx is None and nnx is None:
    pytest.skip(
        "neither equinox nor flax is installed (pip install -e '.[test]')", allow_module_level=True
    )


def _lin(layer: Any, x: Any) -> Any:
    """torch's nn.Linear on a batch: weight (out, in) as torch and Equinox store it."""
    return x @ layer.weight[...].T + layer.bias[...]


if eqx is not None:

    def _eqx_linear(w: Any, b: Any) -> Any:
        lin = eqx.nn.Linear(w.shape[1], w.shape[0], key=jax.random.key(0))
        return eqx.tree_at(lambda m: (m.weight, m.bias), lin, (jnp.asarray(w), jnp.asarray(b)))

    class EqxNet(eqx.Module):
        fc1: Any
        fc2: Any
        steps: Any

        def __init__(self, seed: int) -> None:
            w = weights(seed)
            self.fc1 = _eqx_linear(w["fc1.weight"], w["fc1.bias"])
            self.fc2 = _eqx_linear(w["fc2.weight"], w["fc2.bias"])
            self.steps = jnp.asarray(STEPS)

        def __call__(self, x: Any, scale: float = 1.0) -> Any:
            out = _lin(self.fc2, jax.nn.relu(_lin(self.fc1, x))) * self.steps * scale
            return jax.nn.log_softmax(out, axis=-1)

    class EqxTied(eqx.Module):
        a: Any
        b: Any

        def __call__(self, x: Any) -> Any:
            return _lin(self.b, jnp.tanh(_lin(self.a, x)))

    def eqx_tied(seed: int) -> Any:
        w = tied_weights(seed)
        a = _eqx_linear(w["a.weight"], w["a.bias"])
        b = _eqx_linear(w["a.weight"], w["b.bias"])
        b = eqx.tree_at(lambda m: m.weight, b, a.weight)  # the same array: a tied weight
        return EqxTied(a, b)


if nnx is not None:

    class NnxLinear(nnx.Module):
        def __init__(self, w: Any, b: Any) -> None:
            self.weight = nnx.Param(jnp.asarray(w))
            self.bias = nnx.Param(jnp.asarray(b))
            self.in_features = w.shape[1]

    class NnxNet(nnx.Module):
        def __init__(self, seed: int) -> None:
            w = weights(seed)
            self.fc1 = NnxLinear(w["fc1.weight"], w["fc1.bias"])
            self.fc2 = NnxLinear(w["fc2.weight"], w["fc2.bias"])
            self.steps = nnx.BatchStat(jnp.asarray(STEPS))

        def __call__(self, x: Any, scale: float = 1.0) -> Any:
            out = _lin(self.fc2, jax.nn.relu(_lin(self.fc1, x))) * self.steps[...] * scale
            return jax.nn.log_softmax(out, axis=-1)

    class NnxTied(nnx.Module):
        def __init__(self, seed: int) -> None:
            w = tied_weights(seed)
            self.a = NnxLinear(w["a.weight"], w["a.bias"])
            self.b = NnxLinear(w["a.weight"], w["b.bias"])
            self.b.weight = self.a.weight  # the same variable: a tied weight

        def __call__(self, x: Any) -> Any:
            return _lin(self.b, jnp.tanh(_lin(self.a, x)))


# torch's messages name the class: Net on both sides
FLAVOURS: dict[str, Any] = {}
if eqx is not None:
    EqxNetNamed = type("Net", (EqxNet,), {})
    EqxTiedNamed = type("Net", (EqxTied,), {})
    FLAVOURS["equinox"] = (
        lambda s: EqxNetNamed(s),
        lambda s: EqxTiedNamed(*_parts(eqx_tied(s))),
    )
if nnx is not None:
    NnxNetNamed = type("Net", (NnxNet,), {})
    NnxTiedNamed = type("Net", (NnxTied,), {})
    FLAVOURS["nnx"] = (lambda s: NnxNetNamed(s), lambda s: NnxTiedNamed(s))
needs_eqx = pytest.mark.skipif(eqx is None, reason="equinox is not installed")
needs_nnx = pytest.mark.skipif(nnx is None, reason="flax is not installed")


def _parts(m: Any) -> tuple[Any, Any]:
    return m.a, m.b


def _j(d: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: jnp.asarray(v) for k, v in d.items()}


def assert_close(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert list(got) == list(want) or set(got) == set(want), (list(got), list(want))
        for k in want:
            assert_close(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_close(g, w)
    else:
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)


flavours = pytest.mark.parametrize("flavour", sorted(FLAVOURS))


@flavours
def test_names_match_torch(flavour):
    want = torch_outcome("names")
    make, make_tied = FLAVOURS[flavour]
    got = {
        "params": list(named_parameters(make(0))),
        "buffers": list(named_buffers(make(0))),
        "tied": list(named_parameters(make_tied(0))),
        "tied_all": list(named_parameters(make_tied(0), remove_duplicate=False)),
    }
    if flavour == "nnx":  # NNX lists attributes sorted by name, torch in definition order
        got = {k: sorted(v) for k, v in got.items()}
        want = {k: sorted(v) for k, v in want.items()}
    assert got == want


@flavours
def test_call_matches_torch(flavour):
    make, _ = FLAVOURS[flavour]
    net, x = make(0), jnp.asarray(DATA)
    assert_close(functional_call(net, _j(NEW), (x,)), torch_outcome("call_one_dict"))
    bufs = {"steps": jnp.asarray(3)}
    got = functional_call(net, (_j(NEW), bufs), x, {"scale": 0.5})
    assert_close(got, torch_outcome("call_two_dicts_kwargs"))
    part = {"fc2.weight": jnp.asarray(NEW["fc2.weight"])}
    assert_close(functional_call(net, [part], x), torch_outcome("call_partial"))
    # the user's module is untouched
    assert_close(named_parameters(net), _j(weights(0)))


@flavours
def test_numpy_values_and_jit(flavour):
    make, _ = FLAVOURS[flavour]
    net = make(0)
    want = torch_outcome("call_one_dict")
    assert_close(functional_call(net, NEW, DATA), want)
    jitted = jax.jit(lambda p, x: functional_call(net, p, (x,)))
    assert_close(jitted(_j(NEW), jnp.asarray(DATA)), want)


def _loss(net: Any) -> Any:
    def compute_loss(params, buffers, sample, target):
        pred = functional_call(net, (params, buffers), (sample[None],))
        return -pred[0, target]

    return compute_loss


@flavours
def test_per_sample_grads_match_torch(flavour):
    make, _ = FLAVOURS[flavour]
    net = make(0)
    params, buffers = named_parameters(net), named_buffers(net)
    ft = vmap(grad(_loss(net)), in_dims=(None, None, 0, 0))
    want = torch_outcome("per_sample_grads")
    before = _cache.stats().get("hit", 0)
    for _ in range(3):  # eager, then compiled: the same numbers
        assert_close(ft(params, buffers, jnp.asarray(DATA), jnp.asarray(TARGETS)), want)
    assert _cache.stats().get("hit", 0) > before  # went through the compile cache


@flavours
def test_ensemble_matches_torch(flavour):
    make, _ = FLAVOURS[flavour]
    models = [make(s) for s in range(MODELS)]
    params, buffers = stack_module_state(models)
    want = torch_outcome("ensemble")
    assert_close(params, want["params"])
    assert_close(buffers, want["buffers"])
    base = make(0)

    def fmodel(p, b, x):
        return functional_call(base, (p, b), (x,))

    for _ in range(3):
        assert_close(
            vmap(fmodel, in_dims=(0, 0, None))(params, buffers, jnp.asarray(DATA)), want["out"]
        )
    jitted = jax.jit(jax.vmap(fmodel, in_axes=(0, 0, None)))
    assert_close(jitted(params, buffers, jnp.asarray(DATA)), want["out"])


@flavours
def test_ntk_matches_torch(flavour):
    make, _ = FLAVOURS[flavour]
    net = make(0)
    params = named_parameters(net)

    def f(p, x):
        return functional_call(net, p, (x,))

    x1, x2 = jnp.asarray(DATA[:2]), jnp.asarray(DATA[2:])
    j1, j2 = jacrev(f)(params, x1), jacrev(f)(params, x2)
    got = sum(
        jnp.einsum(
            "Naf,Mbf->NMab",
            j1[k].reshape(*j1[k].shape[:2], -1),
            j2[k].reshape(*j2[k].shape[:2], -1),
        )
        for k in j1
    )
    want = torch_outcome("ntk")
    assert_close(got, want)
    # the same NTK entry through vjp/jvp: J1 @ J2^T applied to a basis vector
    out, vjp_fn = vjp(lambda p: f(p, x2), params)
    ct = jnp.zeros_like(out).at[0, 0].set(1.0)
    (row,) = vjp_fn(ct)
    _, tangent = jaxfunc.func.jvp(lambda p: f(p, x1), (params,), (row,))
    assert_close(tangent, want[:, 0, :, 0])


@flavours
def test_tied_weights_match_torch(flavour):
    _, make_tied = FLAVOURS[flavour]
    net = make_tied(0)
    w = {"a.weight": jnp.asarray(NEW["fc1.weight"][:3, :3])}
    x = jnp.asarray(DATA[:, :3])
    got = (
        functional_call(net, w, x),
        functional_call(net, w, x, tie_weights=False),
        functional_call(net, {**w, "b.weight": w["a.weight"]}, x),
    )
    assert_close(got, torch_outcome("tied_replaces_all"))
    full = _j(tied_weights(5))
    assert_close(functional_call(net, full, x, strict=True), torch_outcome("tied_strict_ok"))


def _raised(fn: Any) -> tuple[str, str, str]:
    with pytest.raises(Exception) as info:
        fn()
    return ("raised", type(info.value).__name__, str(info.value))


@flavours
@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(flavour, name):
    make, make_tied = FLAVOURS[flavour]
    got = _raised(
        lambda: _error_call(name, "jax", lambda k: make(0) if k == "net" else make_tied(0))
    )
    want = torch_outcome(name)
    assert want[0] == "raised" and got[1] == want[1], (got, want)
    if name == "err_not_tensor_value":  # torch's text, then which arrays are meant here
        assert got[2].startswith(want[2])
    elif name == "err_through_tensor":  # torch prints its Parameter; the start is the same
        assert got[2].split(":")[0] == want[2].split(":")[0]
        assert got[2].endswith("is not an instance of torch.nn.Module")
    else:
        assert got[2] == want[2]


@needs_eqx
@flavours
def test_stack_errors_match_torch(flavour):
    make, _ = FLAVOURS[flavour]
    mlp = lambda n: eqx.nn.Linear(n, 2, key=jax.random.key(0))
    got = []
    for models in ([], [mlp(2), make(0)], [mlp(2), mlp(3)]):
        got.append(list(_raised(lambda models=models: stack_module_state(models))[1:]))
    assert got == torch_outcome("stack_errors")


@needs_eqx
def test_module_argument_compiles():
    """An Equinox module passed as an argument (its activation is a library function) is
    keyed on its structure and runs compiled, not eagerly at every call."""
    mlp = eqx.nn.MLP(3, 2, 4, 2, key=jax.random.key(0))
    params = named_parameters(mlp)

    def loss(p, model, x):
        return functional_call(model, p, (x,)).sum()

    jaxfunc.clear_cache()
    before = dict(_cache.stats())
    for _ in range(4):
        g = grad(loss)(params, mlp, jnp.ones(3))
    after = _cache.stats()
    assert after.get("hit", 0) - before.get("hit", 0) >= 2
    assert after.get("eager", 0) - before.get("eager", 0) <= 1
    want = jax.grad(lambda p: functional_call(mlp, p, (jnp.ones(3),)).sum())(params)
    assert_close(g, {k: np.asarray(v) for k, v in want.items()})


@needs_nnx
def test_nnx_buffers_are_other_variables():
    class Model(nnx.Module):
        def __init__(self) -> None:
            self.lin = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
            self.bn = nnx.BatchNorm(2, rngs=nnx.Rngs(0))

    m = Model()
    assert set(named_parameters(m)) == {"bn.bias", "bn.scale", "lin.bias", "lin.kernel"}
    assert set(named_buffers(m)) == {"bn.mean", "bn.var"}


def test_plain_pytree_module_and_missing_names_kept():
    model = {"w": jnp.ones(2), "n": jnp.asarray(3)}
    assert list(named_parameters(model)) == ["w"] and list(named_buffers(model)) == ["n"]

    class Affine:
        def __init__(self, w: Any, b: Any) -> None:
            self.w, self.b = w, b

        def __call__(self, x: Any) -> Any:
            return self.w * x + self.b

    jax.tree_util.register_pytree_with_keys(
        Affine,
        lambda m: (
            ((jax.tree_util.GetAttrKey("w"), m.w), (jax.tree_util.GetAttrKey("b"), m.b)),
            None,
        ),
        lambda _, c: Affine(*c),
    )
    m = Affine(jnp.asarray(2.0), jnp.asarray(1.0))
    assert float(functional_call(m, {"w": jnp.asarray(3.0)}, 2.0)) == 7.0
    assert float(m.w) == 2.0


if __name__ == "__main__":
    sys.path.insert(0, str(RECORD_PATH.parent))
    data = {name: _run_torch(name) for name in TORCH_CASES}
    RECORD_PATH.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(data)} outcomes to {RECORD_PATH}")


def test_pytree_without_key_names_is_a_clear_error():
    """torch would set the attribute; a pytree flattened without keys names its leaves by
    position, so a name-based substitution cannot reach it: an error, never a silent no-op."""

    class Scale:
        def __init__(self, w: Any) -> None:
            self.w = w

        def __call__(self, x: Any) -> Any:
            return self.w * x

    jax.tree_util.register_pytree_node(Scale, lambda m: ((m.w,), None), lambda _, c: Scale(*c))
    with pytest.raises(
        ValueError,
        match=r"`w` is an array of Scale but not a leaf of its pytree by that name \(its leaves are named '0'\)",
    ):
        functional_call(Scale(jnp.ones(())), {"w": jnp.zeros(())}, 1.0)
    assert float(functional_call(Scale(jnp.ones(())), {"0": jnp.zeros(())}, 1.0)) == 0.0


def test_public_names():
    assert jaxfunc.VjpFn is jaxfunc.func.VjpFn and jaxfunc.JvpFn is jaxfunc.func.JvpFn
    _, fn = vjp(jnp.sin, jnp.ones(2))
    assert isinstance(fn, jaxfunc.VjpFn)
    _, jfn = jaxfunc.func.linearize(jnp.sin, jnp.ones(2))
    assert isinstance(jfn, jaxfunc.JvpFn)
    for name in (
        "functional_call",
        "stack_module_state",
        "named_parameters",
        "named_buffers",
        "VjpFn",
        "JvpFn",
    ):
        assert name in jaxfunc.func.__all__
    for name in (
        "JaxfuncWarning",
        "TorchGradModeWarning",
        "BakedRandomnessWarning",
        "EagerFallbackWarning",
        "Float64Warning",
    ):
        assert (
            issubclass(getattr(jaxfunc, name), jaxfunc.JaxfuncWarning) and name in jaxfunc.__all__
        )
