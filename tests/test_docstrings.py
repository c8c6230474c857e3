"""Every public docstring example runs, as written, in a fresh process with JAX's defaults
(float32: the library never turns on x64, and the examples show what a new user sees)."""

import os
import subprocess
import sys

import pytest

MODULES = [
    "jaxfunc.func",
    "jaxfunc.autograd.functional",
    "jaxfunc._grad_mode",
    "jaxfunc._modules",
    "jaxfunc.interop",
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    code = (
        "import doctest, importlib, sys\n"
        f"m = importlib.import_module({module!r})\n"
        "r = doctest.testmod(m, optionflags=doctest.NORMALIZE_WHITESPACE)\n"
        "print(r)\n"
        "sys.exit(1 if r.failed else 0)\n"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "attempted=0" not in proc.stdout or module == "jaxfunc.interop", proc.stdout
