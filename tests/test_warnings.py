"""The silent traps of torch habits warn once per function, name what they found, and can
be silenced by category; clean functions never warn (pyproject's filterwarnings turns any
unexpected jaxfunc warning in the suite into an error)."""

from __future__ import annotations

import random
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxfunc
from jaxfunc import _warnings
from jaxfunc.func import grad, vjp, vmap

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(
    torch is None, reason="torch is not installed (the oracle leg has it)"
)

RNG = np.random.default_rng(0)


def _record(fn, calls=4):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(calls):
            fn()
    return [w for w in caught if issubclass(w.category, jaxfunc.JaxfuncWarning)]


def _once(fn, category, *needles):
    caught = _record(fn)
    assert [w.category for w in caught] == [category], [str(w.message) for w in caught]
    text = str(caught[0].message)
    for needle in needles:
        assert needle in text, text
    assert caught[0].filename == __file__  # points at the user's call
    return text


# -- torch grad mode ---------------------------------------------------------------------------


def _torch_no_grad(x):
    with torch.no_grad():
        y = x * 2
    return (y * x).sum()


def _torch_set_grad_enabled(x):
    with torch.set_grad_enabled(False):
        return (x * x).sum()


def _torch_inference_mode(x):
    with torch.inference_mode():
        return (x * x).sum()


def _helper_with_enable_grad(x):
    with torch.enable_grad():
        return x * 2


def _calls_helper(x):
    return _helper_with_enable_grad(x).sum()


def _decorated_helper_factory():
    @torch.no_grad()
    def helper(x):
        return x * 2

    def f(x):
        return (helper(x) * x).sum()

    return f


@needs_torch
@pytest.mark.parametrize(
    "make, found",
    [
        (lambda: _torch_no_grad, "torch.no_grad"),
        (lambda: _torch_set_grad_enabled, "torch.set_grad_enabled"),
        (lambda: _torch_inference_mode, "torch.inference_mode"),
        (lambda: _calls_helper, "torch.enable_grad"),
        (_decorated_helper_factory, "torch.no_grad"),
    ],
)
def test_torch_grad_mode_warns_once(make, found):
    f = make()
    jaxfunc.clear_cache()
    _warnings._verdicts.clear()
    _once(
        lambda: grad(f)(jnp.ones(3)),
        jaxfunc.TorchGradModeWarning,
        found,
        "jaxfunc.no_grad()",
        f.__name__,
    )


@needs_torch
def test_torch_grad_mode_silenced_by_category():
    def f(x):
        with torch.no_grad():
            return (x * x).sum()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=jaxfunc.TorchGradModeWarning)
        grad(f)(jnp.ones(3))
    assert not [w for w in caught if issubclass(w.category, jaxfunc.JaxfuncWarning)]


# -- baked randomness ---------------------------------------------------------------------------


def _np_random(x):
    return (x + np.random.standard_normal(x.shape)).sum()


def _py_random(x):
    return (x * random.random()).sum()


def _generator(x):
    return (x * RNG.standard_normal()).sum()


def _helper_random(x):
    return x + np.random.rand()


def _calls_random_helper(x):
    return _helper_random(x).sum()


def _jax_random_is_fine(x):
    noise = jax.random.normal(jax.random.key(0), x.shape)
    return (x * noise).sum() * np.float32(2.0)


@pytest.mark.parametrize(
    "f, found",
    [
        (_np_random, "numpy.random"),
        (_py_random, "random"),
        (_generator, "Generator"),
        (_calls_random_helper, "numpy.random"),
    ],
)
def test_global_rng_warns_once(f, found):
    _once(
        lambda: grad(f)(jnp.ones(3)),
        jaxfunc.BakedRandomnessWarning,
        found,
        "jax.random",
        f.__name__,
    )


def test_jax_random_does_not_warn():
    assert _record(lambda: grad(_jax_random_is_fine)(jnp.ones(3))) == []
    assert _record(lambda: vmap(_jax_random_is_fine)(jnp.ones((2, 3)))) == []


def test_vmap_randomness_error_raises_torchs_error():
    def noisy(x):  # a function of its own: the warning below is its first
        return (x + np.random.standard_normal(x.shape)).sum()

    with pytest.raises(
        RuntimeError, match=r"^vmap: called random operation while in randomness error mode"
    ):
        vmap(noisy)(jnp.ones((2, 3)))
    with pytest.warns(jaxfunc.BakedRandomnessWarning):
        out = vmap(noisy, randomness="same")(jnp.ones((2, 3)))
    assert out.shape == (2,)
    with pytest.raises(RuntimeError, match="randomness error mode"):  # through another transform
        vmap(grad(_calls_random_helper))(jnp.ones((2, 3)))
    # vmap's own checks come first, as in torch, where the error is raised by the draw
    with pytest.raises(ValueError, match=r"^vmap\(.*Got in_dim=5 for some input"):
        vmap(noisy, in_dims=5)(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="can't multiply sequence by non-int of type 'float'"):
        vmap(noisy, chunk_size=1.0)(jnp.ones((2, 3)))


class _Model:
    """A ported module: numpy's RNG only where it is made and re-initialized."""

    def __init__(self, n):
        self.w = jnp.asarray(np.random.standard_normal(n))

    def reset_parameters(self):
        self.w = jnp.asarray(np.random.standard_normal(self.w.shape))

    def forward(self, x):
        return jnp.tanh(self.w * x)

    def __call__(self, x):
        return self.forward(x)


class _NoisyModel(_Model):
    def forward(self, x):
        return jnp.tanh(self.w * x) + self._noise(x.shape)

    def _noise(self, shape):
        return np.random.standard_normal(shape)  # (reached through self.forward)


def test_randomness_is_looked_for_in_the_methods_a_call_can_run():
    """A model that draws from numpy's RNG when it is made (``__init__``) or re-initialized
    (``reset_parameters``, never called here) neither warns nor trips
    ``randomness='error'``; a method the call reaches by name (``self._noise``) does."""
    F = jaxfunc.func
    m, noisy = _Model(3), _NoisyModel(3)
    for f in (m.forward, m, lambda x: m.forward(x), lambda x: m(x)):
        assert _record(lambda f=f: F.vmap(f)(jnp.ones((2, 3)))) == []
        assert _record(lambda f=f: F.jacfwd(f)(jnp.ones(3))) == []
        assert _record(lambda f=f: F.hessian(lambda x: f(x).sum())(jnp.ones(3))) == []
    for f in (noisy.forward, noisy, lambda x: noisy.forward(x), lambda x: noisy(x)):
        with pytest.raises(RuntimeError, match="randomness error mode"):
            F.vmap(f)(jnp.ones((2, 3)))
        with pytest.warns(jaxfunc.BakedRandomnessWarning):
            F.jacrev(f)(jnp.ones(3))


def test_jacfwd_randomness_error_raises_torchs_error_after_its_input_checks():
    """torch's jacfwd vmaps its jvp with ``randomness``: a random draw in ``f`` raises
    vmap's error, after jacfwd's own checks of the inputs (a complex input is that error)."""

    def noisy(x):
        return x * np.random.standard_normal(x.shape)

    with pytest.raises(
        RuntimeError, match=r"^vmap: called random operation while in randomness error mode"
    ):
        jaxfunc.func.jacfwd(noisy)(jnp.ones(3))
    F = jaxfunc.func
    for made in (F.hessian(lambda x: noisy(x).sum()), F.jacrev(F.jacfwd(noisy))):  # as torch's
        with pytest.raises(RuntimeError, match=r"^vmap: called random operation"):
            made(jnp.ones(3))
    with pytest.raises(RuntimeError, match=r"^jacfwd: Expected all inputs to be real"):
        jaxfunc.func.jacfwd(noisy)(jnp.ones(3, dtype=jnp.complex64))
    with pytest.warns(jaxfunc.BakedRandomnessWarning):
        assert jaxfunc.func.jacfwd(noisy, randomness="same")(jnp.ones(3)).shape == (3, 3)


# -- eager fallback -------------------------------------------------------------------------------


def test_eager_fallback_warns_once_with_the_line():
    def branchy(x):
        if x.sum() > 0:  # needs a concrete value
            return (x**2).sum()
        return x.sum()

    text = _once(
        lambda: grad(branchy)(jnp.ones(3)),
        jaxfunc.EagerFallbackWarning,
        "`if x.sum() > 0:  # needs a concrete value`",
        "test_warnings.py:",
        "uncompiled",
        "branchy",
    )
    assert "TracerBoolConversionError" in text
    # and it keeps giving torch's numbers, eagerly
    np.testing.assert_allclose(grad(branchy)(jnp.ones(3)), 2 * np.ones(3))


def test_eager_fallback_silenced_by_base_category():
    def branchy(x):
        return (x**2).sum() if x.sum() > 0 else x.sum()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=jaxfunc.JaxfuncWarning)
        for _ in range(3):
            vjp(branchy, jnp.ones(3))
    assert not [w for w in caught if issubclass(w.category, jaxfunc.JaxfuncWarning)]


# -- float64 inputs while x64 is off -------------------------------------------------------------


def test_float64_input_without_x64_warns_once():
    def f(x):
        return (x * x).sum()

    with jax.enable_x64(False):
        x64 = np.ones(3)
        text = _once(
            lambda: grad(f)(x64), jaxfunc.Float64Warning, "float64", "float32", "jax_enable_x64"
        )
        assert "`" + f.__qualname__ + "`" in text
        assert _record(lambda: grad(f)(np.ones(3, np.float32))) == []
    assert _record(lambda: grad(f)(np.ones(3))) == []  # x64 on: nothing is lost


# -- clean functions, torch methods, and the cost -------------------------------------------------


def test_clean_functions_do_not_warn():
    def f(x, y):
        return jnp.sin(x * y).sum()

    assert _record(lambda: grad(f)(jnp.ones(3), jnp.ones(3))) == []
    assert _record(lambda: vmap(f)(jnp.ones((2, 3)), jnp.ones((2, 3)))) == []


def test_detach_gets_a_hint():
    with pytest.raises(AttributeError, match=r"jax\.lax\.stop_gradient\(x\)"):
        grad(lambda x: x.detach().sum())(jnp.ones(3))
    with pytest.raises(AttributeError, match=r"jnp\.expand_dims"):
        vmap(lambda x: x.unsqueeze(0))(jnp.ones((2, 3)))


def test_code_is_read_once_per_function(monkeypatch):
    reads = []
    original = _warnings._Reader.read
    monkeypatch.setattr(
        _warnings._Reader, "read", lambda self, f: reads.append(f) or original(self, f)
    )

    def f(x):
        return (x * x).sum()

    for _ in range(5):
        grad(f)(jnp.ones(3))
        vmap(f)(jnp.ones((2, 3)))
    assert reads == [f]


def test_the_same_source_in_two_files_is_told_twice():
    # Code objects compare equal across files (same source at the same lines): the example
    # of one document run after the same example of another must still be told.
    source = "def f(x):\n    if x.sum() > 0:\n        return (x**2).sum()\n    return x.sum()\n"
    for filename in ("<first document>", "<second document>"):
        ns: dict = {}
        exec(compile(source, filename, "exec"), ns)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                grad(ns["f"])(jnp.ones(3))
        assert [w.category for w in caught] == [jaxfunc.EagerFallbackWarning], filename
