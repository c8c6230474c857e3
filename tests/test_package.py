"""jaxfunc as a package: one version, a changelog entry for it, an import that leaves JAX
alone, and (on the CI's wheel leg) the tests running against the installed wheel.

``JAXFUNC_EXPECT_INSTALLED=1`` (set by ``.ci/run wheel``) says the suite must be testing a
non-editable install: then ``jaxfunc`` has to come from site-packages, with the wheel's
metadata, its ``py.typed`` and every module, and not from a source tree.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import jaxfunc

ROOT = Path(__file__).resolve().parent.parent
EXPECT_INSTALLED = os.environ.get("JAXFUNC_EXPECT_INSTALLED") == "1"


def test_version_in_one_place():
    from jaxfunc import _version

    assert jaxfunc.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(a|b|rc|dev|post)\d+)?", jaxfunc.__version__)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and "src/jaxfunc/_version.py" in pyproject
    assert not re.search(r"^version\s*=", pyproject, re.M), "a second version in pyproject"


def test_changelog_has_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{jaxfunc.__version__}]" in changelog


def test_import_starts_no_backend():
    """Importing jaxfunc creates no array: JAX's backend stays down, so
    ``jax.distributed.initialize`` (which must come first) can still run after it."""
    code = (
        "import jax\n"
        "import jaxfunc, jaxfunc.func, jaxfunc.autograd.functional, jaxfunc.interop\n"
        "from jax._src import xla_bridge\n"
        "print(xla_bridge.backends_are_initialized())\n"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", "import jaxfunc started JAX's backend"


@pytest.mark.skipif(
    not EXPECT_INSTALLED, reason="only on the wheel leg (JAXFUNC_EXPECT_INSTALLED=1)"
)
def test_testing_the_installed_wheel():
    package = Path(jaxfunc.__file__).resolve().parent
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert package.parent == site, f"jaxfunc imported from {package}, not from {site}"
    dist = importlib.metadata.distribution("jaxfunc")
    assert dist.version == jaxfunc.__version__
    # not an editable install: no .pth or finder pointing back to a source tree
    assert not any(str(f).endswith(".pth") for f in dist.files or []), dist.files
    installed = {str(f) for f in dist.files or []}
    assert "jaxfunc/py.typed" in installed
    # every module of the source tree made it into the wheel
    modules = {m.name for m in pkgutil.walk_packages(jaxfunc.__path__, "jaxfunc.")}
    for name in modules:
        importlib.import_module(name)
    assert {"jaxfunc.func", "jaxfunc.autograd.functional", "jaxfunc.interop"} <= modules
    meta = dist.metadata
    assert meta["Name"] == "jaxfunc" and meta["License-Expression"] == "Apache-2.0"
    assert any(u.startswith("Source, https://github.com/") for u in meta.get_all("Project-URL"))
