"""The notebooks run top to bottom offline (scripted model) in the venv's kernel; outputs are stripped.

Each notebook checks its own claims with ``assert`` cells (the pool holds exactly the verified
successes, later runs recall earlier ones, with the scripted model recall changes no answer), so
an execution error here is a broken claim, not just broken code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart.ipynb", "02_wire_into_your_graph.ipynb", "03_inspect_and_tune.ipynb"]
CELL_TIMEOUT_S = 120


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_the_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has stored outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_offline(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SEER_MODEL", "scripted")
    monkeypatch.setenv("SEER_EMBEDDINGS", "hashing")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for key in ("SEER_NOTEBOOK_TASKS", "SEER_TENANT", "SEER_POOL_PATH"):
        monkeypatch.delenv(key, raising=False)
    nb = _read(path)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    # "python3" is jupyter's native kernel: ipykernel launched with this interpreter (sys.executable)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell (its asserts included)

    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "model: scripted" in text
    if path.name.startswith("03"):
        assert any("image/png" in o.get("data", {}) for o in outputs), "the learning curve was not drawn"
