"""The notebooks under notebooks/ run top to bottom, and every check in them prints True.

Each notebook is executed with nbclient in a fresh ``python3`` kernel running this
interpreter, with notebooks/ as working directory, from a temporary copy: the committed
notebooks and their outputs are never rewritten (``python notebooks/execute.py`` refreshes
them). A code cell tagged ``check`` must print only lines ending in ``True``; no cell may
print ``False``.

Runs by default; deselect with ``-m "not notebooks"``.
"""

import re
import shutil
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {
    "vjp_from_torch.ipynb",
    "training_loop.ipynb",
    "jacobians_and_hessians.ipynb",
    "porting_torch_func.ipynb",
}
CELL_TIMEOUT_S = 300  # a whole notebook takes well under a minute; this is for loaded machines

pytestmark = pytest.mark.notebooks


def _require(module: str):
    return pytest.importorskip(
        module, reason=f"{module} is not installed (it comes with: pip install -e '.[test]')"
    )


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    """Make the ``python3`` kernel this interpreter's, whatever other kernelspecs exist."""
    kernelspec = _require("ipykernel.kernelspec")
    kernelspec.write_kernel_spec(tmp_path / "jupyter" / "kernels" / "python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


def _stdout(cell) -> str:
    return "".join(
        out.get("text", "")
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )


def test_the_notebooks_are_there():
    missing = EXPECTED - set(NOTEBOOKS)
    assert not missing, f"missing from notebooks/: {sorted(missing)}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_checks_pass(name, tmp_path, python3_kernel):
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    _require("matplotlib")
    if name == "porting_torch_func.ipynb":
        _require("equinox")

    copy = tmp_path / name
    shutil.copyfile(NOTEBOOK_DIR / name, copy)
    nb = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=python3_kernel,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    try:
        client.execute()  # raises CellExecutionError, with the traceback, if a cell errors
    finally:
        nbformat.write(nb, copy)  # the executed copy, for a look after a failure

    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for index, cell in enumerate(code_cells):
        text = _stdout(cell)
        assert not re.search(r"\bFalse\b", text), f"code cell {index} printed False:\n{text}"
    checks = [cell for cell in code_cells if "check" in cell.metadata.get("tags", [])]
    assert checks, f"{name} has no cell tagged 'check'"
    for cell in checks:
        lines = [line for line in _stdout(cell).splitlines() if line.strip()]
        assert lines, f"check cell printed nothing:\n{cell.source}"
        for line in lines:
            assert line.rstrip().endswith("True"), f"check did not print True: {line!r}"
