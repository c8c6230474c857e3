"""``sin`` written in ``jax.numpy`` arithmetic only, so that XLA's CPU backend vectorizes it.

XLA (jaxlib 0.10.2) lowers ``jnp.sin``/``jnp.cos`` on CPU to one scalar libm call per
element (see benchmarks/README.md, "CPU kernels"); multiplies, adds and rounding vectorize.
This is the benchmark's *formulation* experiment: how fast x²+sin(x²) runs once sin is
vectorizable, and how close its values stay to libm's and torch's. Not part of jaxfunc.

Method (for |x| < 2^20 only: larger arguments give NaN, a fidelity break libm and torch do
not have; a ``lax.cond`` falling back to ``jnp.sin`` keeps fidelity but splits the kernel
into several passes over memory, slower than the scalar kernel at N >= 1e5 in float32):
k = round(x·2/π); r = x − k·π/2 with π/2 split in three parts (Cody–Waite: k·P1 and k·P2
are exact for |k| < 2^(bits left), so r keeps full precision); sin or cos of r in
[−π/4, π/4] by its Taylor polynomial (enough terms that the first dropped one is below half
an ulp); the quadrant k mod 4 picks which and its sign; inf and NaN give NaN, as libm does.
float32 is evaluated in float64 (when x64 is on) and rounded once. Error against mpmath
(bench_cpu.py): float32 <= 0.5 ulp (torch 0.6), float64 <= 2 ulp (libm and torch: 1).
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax.numpy as jnp
import numpy as np

# π to 60 significant digits: enough for the three-part split of π/2 in float64.
_PI = Fraction("3.14159265358979323846264338327950288419716939937510582097494")


def _split(value: Fraction, dtype: type, bits: int) -> tuple[float, float, float]:
    """value ≈ p1 + p2 + p3, p1 and p2 with at most ``bits`` significant bits."""
    parts = []
    rest = value
    for _ in range(2):
        e = math.floor(math.log2(abs(float(rest))))
        scale = Fraction(2) ** (bits - 1 - e)
        p = Fraction(round(rest * scale)) / scale
        parts.append(p)
        rest -= p
    parts.append(rest)
    return tuple(float(dtype(float(p))) for p in parts)  # type: ignore[return-value]


_CONST = {
    np.dtype(np.float32): (_split(_PI / 2, np.float32, 12), 4, 5),  # sin to r^9, cos to r^10
    np.dtype(np.float64): (_split(_PI / 2, np.float64, 30), 7, 8),  # sin to r^15, cos to r^16
}


def _poly(z, coeffs):
    acc = jnp.zeros_like(z) + coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * z + c
    return acc


#: Beyond this |x| the reduction loses accuracy; the result there is NaN (see the module
#: docstring: a run-time branch to jnp.sin instead costs more passes over memory than the
#: scalar kernel it replaces).
LIMIT = 2.0**20


def _poly_sin(x):
    """sin(x) from multiplies, adds and one rounding, for |x| < LIMIT."""
    (p1, p2, p3), n_sin, n_cos = _CONST[np.dtype(x.dtype)]
    k = jnp.round(x * (2 / math.pi))
    r = ((x - k * p1) - k * p2) - k * p3
    z = r * r
    # Taylor coefficients (-1)^j / (2j+1)! and (-1)^j / (2j)!, j >= 1.
    s_coef = [(-1) ** j / math.factorial(2 * j + 1) for j in range(1, n_sin + 1)]
    c_coef = [(-1) ** j / math.factorial(2 * j) for j in range(1, n_cos + 1)]
    s = r + r * z * _poly(z, s_coef)
    c = 1 + z * _poly(z, c_coef)
    q = k - 4 * jnp.floor(k / 4)  # quadrant 0..3
    y = jnp.where((q == 1) | (q == 3), c, s)
    y = jnp.where(q >= 2, -y, y)
    return jnp.where(x == 0, x, y)  # keeps the sign of -0.0, as libm does


def vec_sin(x):
    """sin(x) for |x| < 2^20, vectorizable by XLA on CPU (NaN beyond). float32 is computed in
    float64 when x64 is on (then correctly rounded in practice: ≤ 0.5 ulp measured); float64
    within ~2 ulp."""
    if x.dtype == jnp.float32 and jnp.zeros((), jnp.float64).dtype == jnp.float64:
        return vec_sin(x.astype(jnp.float64)).astype(jnp.float32)
    return jnp.where(jnp.abs(x) < LIMIT, _poly_sin(x), jnp.nan)
