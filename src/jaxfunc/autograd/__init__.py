"""``jaxfunc.autograd.functional`` mirrors ``torch.autograd.functional``."""

from . import functional as functional

__all__ = ["functional"]
