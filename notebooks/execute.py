"""Run the notebooks in this folder top to bottom and save them with their outputs.

    python notebooks/execute.py                      # every notebook here
    python notebooks/execute.py training_loop.ipynb  # only these

Each notebook runs in a fresh ``python3`` kernel (this interpreter's, via ipykernel) with
this folder as working directory, on CPU unless ``JAX_PLATFORMS`` says otherwise. A notebook
with an error is not saved, and the script exits with status 1.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def execute(path: Path) -> float:
    """Execute ``path`` in place; returns the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=600,
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main(names: list[str]) -> int:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    failed = False
    for path in paths:
        try:
            print(f"{path.name}: {execute(path):.1f} s", flush=True)
        except CellExecutionError as err:
            print(f"{path.name}: FAILED, not saved\n{err}", file=sys.stderr, flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
