"""The environment descriptions agree with pyproject.toml; repository hygiene."""

import json
import re
import tomllib
from pathlib import Path

import packaging.requirements
import packaging.utils
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirement(text):
    """``(normalised name, specifier)`` of a pip or conda requirement (markers dropped)."""
    requirement = packaging.requirements.Requirement(text.split(";")[0].strip())
    return packaging.utils.canonicalize_name(requirement.name), str(requirement.specifier)


def _declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"]


#: ``pip install --no-deps "REQUIREMENT"`` as ./dev and binder/postBuild spell it.
NO_DEPS_INSTALL = re.compile(r'pip install (?:--quiet )?--no-deps "([^"]+)"')


def test_binder_requirements_are_the_declared_dependencies():
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    listed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert listed == _declared()
    # repo2docker prefers an environment.yml in binder/ and would ignore requirements.txt
    assert not list((ROOT / "binder").glob("environment.y*ml"))
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_conda_environment_is_the_declared_dependencies():
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            pip = [item for item in entry["pip"] if not item.startswith("-")]
            assert "-e ." in entry["pip"]
        elif entry != "pip" and not entry.startswith("python="):
            conda.append(entry)
    assert sorted(map(_requirement, conda + pip)) == sorted(map(_requirement, _declared()))


def test_the_no_deps_wheel_is_installed_alike_everywhere():
    installs = {
        name: NO_DEPS_INSTALL.findall((ROOT / name).read_text())
        for name in ("dev", "binder/postBuild", "environment.yml")
    }
    assert installs == {name: ["sdss-mangadap>=4.5"] for name in installs}
    assert "pip install --no-deps ." in (ROOT / "binder" / "postBuild").read_text()


def test_jupyterlab_overrides_are_installed_by_binder_and_dev():
    overrides = "stellar_nb/resources/jupyterlab/overrides.json"
    settings = json.loads((ROOT / overrides).read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert settings["@jupyterlab/extensionmanager-extension:plugin"]["enabled"] is False
    assert overrides in (ROOT / "binder" / "postBuild").read_text()
    assert overrides in (ROOT / "dev").read_text()


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, (
                    f"{path.name} has outputs"
                )


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "./dev run" in readme and "./dev test" in readme
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


def test_ruff_lint_and_format_are_clean():
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    for command in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([str(ruff), *command], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


#: What a notebook may import from the package: the package, its public subpackages (their
#: curated ``__init__``, not their modules) and its public top-level modules.
PUBLIC_SUBPACKAGES = ("data", "plots", "preprocess", "simulate", "dashboard")


def _public_imports():
    import stellar_nb

    return {"stellar_nb"} | {f"stellar_nb.{name}" for name in stellar_nb.PUBLIC_MODULES}


def _imported_modules(source):
    """``(module, names)`` of each import statement in ``source`` (IPython magics dropped)."""
    import ast

    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            yield node.module, tuple(alias.name for alias in node.names)


def test_notebooks_import_only_the_public_api():
    allowed = _public_imports()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert any(path.name == "dashboard.ipynb" for path in notebooks)
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for module, names in _imported_modules("".join(cell["source"])):
                if not module.startswith("stellar_nb"):
                    continue
                assert module in allowed, f"{path.name} imports {module}"
                if module == "stellar_nb":
                    for name in names:
                        assert (
                            f"stellar_nb.{name}" in allowed
                            or name in __import__("stellar_nb").__all__
                        ), f"{path.name} imports stellar_nb.{name}"
                elif module.removeprefix("stellar_nb.") in PUBLIC_SUBPACKAGES:
                    subpackage = __import__(module, fromlist=["__all__"])
                    for name in names:
                        assert name in subpackage.__all__, f"{path.name} imports {module}.{name}"


def test_importing_the_package_loads_no_deep_learning_framework():
    import subprocess
    import sys

    code = (
        "import sys, stellar_nb\n"
        "from stellar_nb import data, plots, preprocess, simulate, dashboard\n"
        "stellar_nb.get_config()\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_every_public_name_resolves():
    import importlib

    import stellar_nb

    packages = ["stellar_nb", *(f"stellar_nb.{name}" for name in PUBLIC_SUBPACKAGES)]
    for package in packages:
        module = importlib.import_module(package)
        assert len(set(module.__all__)) == len(module.__all__), package
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{package}.{name}"
    for name in stellar_nb.PUBLIC_MODULES:
        if name not in ("model", "train", "tune", "comparison"):  # these load TensorFlow
            importlib.import_module(f"stellar_nb.{name}")
    assert "plot_kde_scatter" in dir(importlib.import_module("stellar_nb.plots"))


def test_every_package_module_declares_all():
    for path in sorted((ROOT / "stellar_nb").rglob("*.py")):
        if path.name == "__main__.py":
            continue
        assert "__all__" in path.read_text(), f"{path.relative_to(ROOT)} has no __all__"
