"""Shared test fixtures and options.

- ``--run-network`` runs tests marked ``network`` (they need the internet); off by default.
- ``sdss_fixtures`` is ../shared/fixtures/sdss (six real SDSS files) beside the checkout; tests
  that use it skip, saying why, where the folder is absent.
- ``lamost_dir`` is ../shared/data/lamost-dr10 (real LAMOST spectra with LASP labels); tests that
  use it skip, saying why, where it is absent.
- ``quick_survey`` is a small simulated survey, generated once per test session.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "sdss"
SHARED_LAMOST = ROOT.parent / "shared" / "data" / "lamost-dr10"
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
