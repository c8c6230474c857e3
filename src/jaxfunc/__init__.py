"""jaxfunc: PyTorch's function-transform API, with torch's semantics, computed by JAX.

Swap ``torch.func`` for ``jaxfunc.func`` and ``torch.autograd.functional`` for
``jaxfunc.autograd.functional``; write the math with ``jax.numpy``.
"""

from . import autograd as autograd
from . import func as func
from . import interop as interop
from ._cache import clear_cache as clear_cache
from ._cache import disabled as cache_disabled
from ._cache import is_enabled as cache_enabled
from ._cache import set_enabled as set_cache_enabled
from ._grad_mode import enable_grad as enable_grad
from ._grad_mode import no_grad as no_grad
from ._version import __version__ as __version__

__all__ = [
    "__version__",
    "autograd",
    "cache_disabled",
    "cache_enabled",
    "clear_cache",
    "enable_grad",
    "func",
    "interop",
    "no_grad",
    "set_cache_enabled",
]
