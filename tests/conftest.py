"""Shared test fixtures and options.

- ``--run-network`` runs tests marked ``network`` (they need the internet); off by default.
- ``sdss_fixtures`` is ../shared/fixtures/sdss (six real SDSS files) beside the checkout; tests
  that use it skip, saying why, where the folder is absent.
- ``lamost_dir`` is ../shared/data/lamost-dr10 (real LAMOST spectra with LASP labels); tests that
  use it skip, saying why, where it is absent.
- ``quick_survey`` is a small simulated survey, generated once per test session.
- ``binder_env`` is a fresh environment built from ``binder/`` alone, as repo2docker builds it;
  ``binder_server`` is JupyterLab (and Voila) served from it through ``binder/start``.
- ``chromium`` is Debian's Chromium for Playwright (skips where missing, fails in CI).
"""

import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "sdss"
SHARED_LAMOST = ROOT.parent / "shared" / "data" / "lamost-dr10"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_addoption(parser):
    parser.addoption("--run-network", action="store_true", help="run tests that need the internet")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-network"):
        return
    skip = pytest.mark.skip(reason="needs the internet; run with --run-network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sdss_fixtures():
    """Folder of the six real SDSS spectrum files (skips when absent)."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real SDSS fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def lamost_dir():
    """Folder of the real LAMOST DR10 spectra and labels.csv (skips when absent)."""
    if not (SHARED_LAMOST / "labels.csv").is_file():
        pytest.skip(f"real LAMOST DR10 spectra not found at {SHARED_LAMOST}")
    return SHARED_LAMOST


@pytest.fixture(scope="session")
def session_data_home(tmp_path_factory):
    """A data home private to this test session."""
    return tmp_path_factory.mktemp("data_home")


@pytest.fixture(scope="session")
def quick_config(session_data_home):
    """Quick-mode configuration rooted in the session's data home."""
    from stellar_nb.config import get_config

    return get_config(quick=True, data_home=session_data_home)


@pytest.fixture(scope="session")
def quick_survey(quick_config):
    """Folder of a quick-mode simulated survey (train/validation/test Parquet)."""
    from stellar_nb import simulate

    return simulate.resolve_survey(config=quick_config)


def _binder_environment(prefix):
    """``os.environ`` with the Binder environment ``prefix`` activated instead of ours."""
    environment = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    ours = str(Path(sys.prefix) / "bin")
    path = [entry for entry in environment.get("PATH", "").split(os.pathsep) if entry != ours]
    environment["PATH"] = os.pathsep.join([str(prefix / "bin"), *path])
    environment["VIRTUAL_ENV"] = str(prefix)
    return environment


@dataclasses.dataclass(frozen=True)
class BinderEnvironment:
    """A Python environment built from ``binder/`` alone, and the copy of the repository it serves.

    Attributes
    ----------
    repository : pathlib.Path
        A copy of the checkout's files (tracked and untracked, not ignored), as Binder clones it.
    prefix : pathlib.Path
        The virtual environment.
    environ : dict
        The environment variables with ``prefix`` activated (first on ``PATH``).
    """

    repository: Path
    prefix: Path
    environ: dict

    def command(self, *args):
        """Return ``args`` run through ``binder/start``, as repo2docker runs every command."""
        return [str(self.repository / "binder" / "start"), *map(str, args)]


@pytest.fixture(scope="session")
def binder_env(tmp_path_factory, session_data_home, quick_survey):
    """A fresh environment built as repo2docker builds Binder's, timed; shared by the session.

    The checkout's files are copied (``git ls-files``: what a clone holds, plus new files not
    ignored); a virtual environment of ``binder/runtime.txt``'s Python gets
    ``pip install -r binder/requirements.txt`` (from pip's cache where it can), then
    ``binder/postBuild`` runs from the copy's root with that environment first on ``PATH``.
    ``STELLAR_NB_DATA`` is the session's data home, holding the session's quick survey, so the
    notebooks and the dashboard do not generate it again.
    """
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    if runtime != f"python-{sys.version_info.major}.{sys.version_info.minor}":
        pytest.fail(f"binder/runtime.txt asks for {runtime}; these tests run {sys.version}")
    root = tmp_path_factory.mktemp("binder")
    repository = root / "repository"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is listed too
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repository / name)
    prefix = root / "env"
    environ = _binder_environment(prefix)
    environ["STELLAR_NB_DATA"] = str(session_data_home)
    environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # the debugger's frozen-modules warning
    steps = {
        "venv": [sys.executable, "-m", "venv", str(prefix)],
        # --no-compile: the same packages, without writing bytecode for every module up front
        "requirements.txt": [str(prefix / "bin" / "python"), "-m", "pip", "install", "--quiet",
                             "--no-compile", "-r", "binder/requirements.txt"],
        "postBuild": ["bash", "binder/postBuild"],
    }  # fmt: skip
    for step, command in steps.items():
        started = time.perf_counter()
        done = subprocess.run(command, cwd=repository, env=environ, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(
                f"Binder build, {step}, failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        print(f"\nBinder build, {step}: {time.perf_counter() - started:.0f} s")
    return BinderEnvironment(repository, prefix, environ)


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium for Playwright (skips where it is missing, fails in CI)."""
    if not CHROMIUM.is_file():
        message = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + "; CI must run the browser tests")
        pytest.skip(message)
    return CHROMIUM


def free_port():
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def binder_server(binder_env, tmp_path_factory):
    """JupyterLab from the Binder environment through ``binder/start``, as Binder serves it.

    On a free loopback port with a token, rooted at the repository copy, with fresh JupyterLab
    user settings and workspaces (a first start). Both Binder links work on it:
    ``lab/tree/notebooks`` and ``voila/render/notebooks/dashboard.ipynb``. Yields
    ``(base_url, token)``.
    """
    folder = tmp_path_factory.mktemp("binder_server")
    port, token = free_port(), secrets.token_hex(16)
    environ = dict(binder_env.environ)
    environ["JUPYTERLAB_SETTINGS_DIR"] = str(folder / "user-settings")
    environ["JUPYTERLAB_WORKSPACES_DIR"] = str(folder / "workspaces")
    command = binder_env.command(
        "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={binder_env.repository}",
    )  # fmt: skip
    log = folder / "jupyter.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            command, cwd=binder_env.repository, env=environ, stdout=stream,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        yield base_url, token
    finally:
        from stellar_nb.bench import dashboard as bench_dashboard

        bench_dashboard.stop(process)
        print(f"\nJupyter server log (last lines):\n{log.read_text()[-1500:]}")
