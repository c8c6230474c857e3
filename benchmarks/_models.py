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


def as_jax(params: list[tuple[np.ndarray, np.ndarray]], put: Any) -> list[tuple[Any, Any]]:
    return [(put(W), put(b)) for W, b in params]
