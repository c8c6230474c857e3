"""The small tanh MLPs the benchmarks differentiate, in jnp and torch, with numpy derivatives.

Parameters are a list of ``(W, b)`` layers, ``W`` of shape ``(fan_in, fan_out)``; every layer
but the last is followed by ``tanh``. The numpy derivatives are derived by hand (not by any
AD system), so they are an independent check of every variant.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def init(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(0.0, 1.0 / np.sqrt(m), (m, n)), rng.normal(0.0, 0.1, n))
        for m, n in itertools.pairwise(sizes)
    ]


def forward(lib: Any, params: Any, x: Any) -> Any:
    """The MLP with ``lib`` = ``jax.numpy`` or ``torch``; ``x`` is one sample or a batch."""
    for W, b in params[:-1]:
        x = lib.tanh(x @ W + b)
    W, b = params[-1]
    return x @ W + b


def mse(lib: Any, params: Any, x: Any, y: Any) -> Any:
    return ((forward(lib, params, x) - y) ** 2).mean()


# -- hand-derived derivatives (numpy) -------------------------------------------------------


def _activations(params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> list[np.ndarray]:
    hs = [x]
    for i, (W, b) in enumerate(params):
        z = hs[-1] @ W + b
        hs.append(np.tanh(z) if i < len(params) - 1 else z)
    return hs


def jacobian(params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """d forward / d x for one sample: ``(fan_out, fan_in)``."""
    hs = _activations(params, x)
    J = np.eye(x.shape[0])
    for i, (W, _) in enumerate(params):
        J = W.T @ J
        if i < len(params) - 1:
            J = (1 - hs[i + 1] ** 2)[:, None] * J
    return J


def mse_grad(
    params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, y: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gradient of ``mse`` with respect to every ``(W, b)``, for a batch ``x`` of shape (B, d)."""
    hs = _activations(params, x)
    g = 2 * (hs[-1] - y) / hs[-1].size  # d loss / d output
    grads = []
    for i in reversed(range(len(params))):
        if i < len(params) - 1:
            g = g * (1 - hs[i + 1] ** 2)
        grads.append((hs[i].T @ g, g.sum(axis=0)))
        g = g @ params[i][0].T
    return grads[::-1]


def per_sample_mse_grads(
    params: list[tuple[np.ndarray, np.ndarray]], xs: np.ndarray, ys: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``mse_grad`` of each sample alone, stacked: each leaf gets a leading batch axis."""
    per = [mse_grad(params, x[None], y[None]) for x, y in zip(xs, ys)]
    return [
        (np.stack([p[i][0] for p in per]), np.stack([p[i][1] for p in per]))
        for i in range(len(params))
    ]


def rounded(params: list[tuple[np.ndarray, np.ndarray]], rnd: Any) -> list[tuple[Any, Any]]:
    """``params`` with every array passed through ``rnd`` (``Env.rounded``)."""
    return [(rnd(W), rnd(b)) for W, b in params]


def as_jax(params: list[tuple[np.ndarray, np.ndarray]], put: Any) -> list[tuple[Any, Any]]:
    return [(put(W), put(b)) for W, b in params]


# -- torch-style parameter dicts (the torch.func tutorials' ``dict(model.named_parameters())``) --
#
# ``{"fc1.weight": (out, in), "fc1.bias": (out,), ...}`` in insertion order, nn.Linear's layout
# (``x @ W.T + b``); every layer but the last is followed by tanh. The tutorials' models are
# written as functions of such dicts, so that a module system (Equinox, functional_call) can
# replace them without changing the benchmarks' structure.


def init_dict(sizes: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    params = {}
    for i, (W, b) in enumerate(init(sizes, seed), start=1):
        params[f"fc{i}.weight"] = np.ascontiguousarray(W.T)
        params[f"fc{i}.bias"] = b
    return params


def _layers(params: dict[str, Any]) -> list[tuple[Any, Any]]:
    n = len(params) // 2
    return [(params[f"fc{i}.weight"], params[f"fc{i}.bias"]) for i in range(1, n + 1)]


def forward_dict(lib: Any, params: dict[str, Any], x: Any) -> Any:
    """The MLP of a parameter dict, with ``lib`` = ``jax.numpy`` or ``torch``."""
    layers = _layers(params)
    for W, b in layers[:-1]:
        x = lib.tanh(x @ W.T + b)
    W, b = layers[-1]
    return x @ W.T + b


def _backprop_dict(
    params: dict[str, np.ndarray], hs: list[np.ndarray], g: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients of ``sum(g * output)`` per leading index of ``g``: ``g`` is (..., out) and
    ``hs[i]`` the activations (N, width), broadcast against g's leading axes (N, ...)."""
    layers = _layers(params)
    grads = {}
    extra = g.ndim - 2  # axes between the sample axis and the unit axis
    for i in reversed(range(len(layers))):
        if i < len(layers) - 1:
            t = hs[i + 1].reshape(hs[i + 1].shape[:1] + (1,) * extra + hs[i + 1].shape[1:])
            g = g * (1 - t**2)
        h = hs[i].reshape(hs[i].shape[:1] + (1,) * extra + hs[i].shape[1:])
        grads[f"fc{i + 1}.weight"] = g[..., :, None] * h[..., None, :]
        grads[f"fc{i + 1}.bias"] = g
        g = g @ layers[i][0]
    return {k: grads[k] for k in params}


def _activations_dict(params: dict[str, np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    return _activations([(W.T, b) for W, b in _layers(params)], x)


def param_jacobian_dict(params: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """d forward(x_n)_a / d params, per sample n and output a: leaves (N, A, *param shape)."""
    hs = _activations_dict(params, x)
    n, a = x.shape[0], hs[-1].shape[1]
    g = np.broadcast_to(np.eye(a), (n, a, a)).copy()
    return _backprop_dict(params, hs, g)


def per_sample_ce_grads_dict(
    params: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradient of cross-entropy(forward(x_n), t_n) per sample: leaves (N, *param shape)."""
    hs = _activations_dict(params, x)
    z = hs[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(t)), t] -= 1.0  # d CE / d logits = softmax - onehot
    return _backprop_dict(params, hs, p)


def ntk(j1: dict[str, np.ndarray], j2: dict[str, np.ndarray]) -> np.ndarray:
    """The empirical NTK ``sum over parameters of J1[n, a, p] J2[m, b, p]``: (N, M, A, B)."""
    flat1 = np.concatenate([j.reshape((*j.shape[:2], -1)) for j in j1.values()], axis=2)
    flat2 = np.concatenate([j.reshape((*j.shape[:2], -1)) for j in j2.values()], axis=2)
    return np.einsum("naf,mbf->nmab", flat1, flat2)
