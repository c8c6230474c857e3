"""jaxfunc: PyTorch's function-transform API, with torch's semantics, computed by JAX.

Swap ``torch.func`` for ``jaxfunc.func`` and ``torch.autograd.functional`` for
``jaxfunc.autograd.functional``; write the math with ``jax.numpy``.
"""

from . import autograd as autograd
from . import func as func
from . import interop as interop
from ._core import VjpFn as VjpFn
from ._cpu import tune_cpu as tune_cpu
from ._grad_mode import enable_grad as enable_grad
from ._grad_mode import no_grad as no_grad
from ._jit import cache_info as cache_info
from ._jit import clear_cache as clear_cache
from ._jit import disabled as cache_disabled
from ._jit import is_enabled as cache_enabled
from ._jit import set_enabled as set_cache_enabled
from ._version import __version__ as __version__
from ._warnings import BakedRandomnessWarning as BakedRandomnessWarning
from ._warnings import EagerFallbackWarning as EagerFallbackWarning
from ._warnings import Float64Warning as Float64Warning
from ._warnings import JaxfuncWarning as JaxfuncWarning
from ._warnings import TorchGradModeWarning as TorchGradModeWarning
from .func import JvpFn as JvpFn

__all__ = [
    "BakedRandomnessWarning",
    "EagerFallbackWarning",
    "Float64Warning",
    "JaxfuncWarning",
    "JvpFn",
    "TorchGradModeWarning",
    "VjpFn",
    "__version__",
    "autograd",
    "cache_disabled",
    "cache_enabled",
    "cache_info",
    "clear_cache",
    "enable_grad",
    "func",
    "interop",
    "no_grad",
    "set_cache_enabled",
    "tune_cpu",
]
