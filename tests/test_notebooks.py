"""Execute every notebook, exercises' solutions included, in the environment Binder builds.

Each notebook runs once, in quick mode, through ``binder/start`` with ``jupyter execute`` from the
fresh Binder environment (the ``binder_env`` fixture), so a package missing from ``binder/`` fails
here. Each notebook asserts its key numbers in its last cells; its time is printed.
"""

import subprocess
import time

import nbformat
import pytest
from conftest import ROOT

NOTEBOOKS = [
    *sorted((ROOT / "notebooks").glob("*.ipynb")),
    *sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb")),
]
#: seconds a single cell may run (the slowest, training or tuning in quick mode, takes about a minute)
CELL_TIMEOUT = 900


def _names(path):
    return str(path.relative_to(ROOT / "notebooks").with_suffix(""))


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(2400)  # the first to use ``binder_env`` builds it (minutes)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=map(_names, NOTEBOOKS))
def test_notebook_runs_in_the_binder_environment(path, binder_env):
    notebook = binder_env.repository / path.relative_to(ROOT)
    command = binder_env.command(
        "jupyter", "execute", "--inplace", f"--timeout={CELL_TIMEOUT}", notebook
    )
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=binder_env.repository, env=binder_env.environ, capture_output=True, text=True
    )
    print(f"\n{_names(path)}: {time.perf_counter() - started:.0f} s in the Binder environment")
    assert done.returncode == 0, (
        f"{path.name} failed in the Binder environment:\n{done.stderr[-6000:]}"
    )
    cells = [
        cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"
    ]
    assert cells and all(cell.execution_count is not None for cell in cells), path.name
    errors = [output for cell in cells for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors
