"""The compile cache: eager calls of a function transform at ``jax.jit`` speed, never a
stale result. It knows nothing of torch: a transform hands it a typed program and arrays.

- ``_keys``: typed, frozen values that key compiles (``Program``, ``Transform``).
- ``_cache``: per-callable slots and entries, and the policy: compile, reuse, run eagerly.
- ``_guard``: walks what a callable reads and generates the guard that re-checks it.
- ``_rebind``: rebuilds a callable so that hoisted places read traced values.
- ``_boundary``: what a result loses crossing ``jax.jit`` (dict order, returned inputs).
"""

from ._cache import PYTREE_CALLABLES as PYTREE_CALLABLES
from ._cache import Jits as Jits
from ._cache import WeakIdTable as WeakIdTable
from ._cache import cache_info as cache_info
from ._cache import call as call
from ._cache import clear_cache as clear_cache
from ._cache import disabled as disabled
from ._cache import is_enabled as is_enabled
from ._cache import keep as keep
from ._cache import pending as pending
from ._cache import register_wrapper as register_wrapper
from ._cache import set_enabled as set_enabled
from ._cache import set_hooks as set_hooks
from ._cache import stats as stats
from ._cache import tracing as tracing
from ._cache import unwrap as unwrap
from ._guard import code_names as code_names
from ._keys import UNKEYABLE as UNKEYABLE
from ._keys import Program as Program
from ._keys import Static as Static
from ._keys import Transform as Transform
from ._keys import typed_key as typed_key
