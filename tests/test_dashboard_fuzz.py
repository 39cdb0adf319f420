"""The bad-input corpus of ``tests/fuzz.py`` through the dashboard's upload path.

Every kind's bytes go through :func:`stellar_nb.dashboard.inputs.read_upload` as a browser would
send them (a kind that is not a regular file cannot be picked in a browser and is left to
``tests/test_fuzz.py``; one over the upload limit is refused by the browser, as
:meth:`Dashboard.load_upload` is told), and through :func:`stellar_nb.dashboard.analysis.analyse`
when it reads. Each must end in a :class:`DashboardInputError` whose message starts with the
file's name and is not a reader fault, or in an analysis with a trust flag raised, or in the base
star's own labels (damage the reader rightly steps over). No other exception, bounded time.
"""

import time

import fuzz
import numpy as np
import pytest

from stellar_nb import emulator as emulator_module
from stellar_nb import model_directory
from stellar_nb.dashboard import analysis as analysis_module
from stellar_nb.dashboard import inputs, survey_cache

pytestmark = pytest.mark.slow

#: Bound on the whole corpus through the upload path (about 25 s measured on 2 cores).
MAX_SECONDS = 180.0


@pytest.fixture(scope="module")
def shipped():
    if not fuzz.available():
        pytest.skip(f"shared real files not found under {fuzz.ROOT.parent / 'shared'}")
    return model_directory.load(), emulator_module.load_emulator()


@pytest.fixture(scope="module")
def cache(shipped, quick_survey, quick_config):
    return survey_cache.build_survey_cache(
        quick_survey, shipped[0], quick_config.data_home / "dashboard-shipped"
    )


def _analyse(content, name, shipped, cache):
    spectrum = inputs.read_upload(content, name)
    return analysis_module.analyse(spectrum, *shipped, cache)


def test_every_kind_is_refused_by_name_or_flagged(shipped, cache, tmp_path, capsys):
    base = _analyse(fuzz.BASE.read_bytes(), fuzz.BASE.name, shipped, cache)
    assert not any(flag["raised"] for flag in base.flags)  # the base star itself is clean
    counts = {"refused": 0, "flagged": 0, "as the base star": 0, "not uploadable": 0}
    problems, start = [], time.perf_counter()
    for name, build in fuzz.kinds().items():
        folder = tmp_path / name
        folder.mkdir()
        path = build(folder)
        if not path.is_file():  # a FIFO, a folder, a dangling link: no browser sends one
            counts["not uploadable"] += 1
            continue
        if path.stat().st_size > inputs.MAX_UPLOAD_BYTES:
            counts["refused"] += 1  # the browser refuses it (test_dashboard tests that path)
            continue
        try:
            analysis = _analyse(path.read_bytes(), path.name, shipped, cache)
        except inputs.DashboardInputError as error:
            message = str(error)
            if not message.startswith(f"{path.name}: ") or "unexpectedly" in message:
                problems.append(f"{name}: unclear message {message!r}")
            else:
                counts["refused"] += 1
            continue
        except Exception as error:  # the dashboard would show a traceback: count and go on
            problems.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if any(flag["raised"] for flag in analysis.flags):
            counts["flagged"] += 1
        elif np.all(np.abs(analysis.prediction - base.prediction) <= base.sigma):
            counts["as the base star"] += 1
        else:
            problems.append(f"{name}: unflagged labels {analysis.prediction}")
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nfuzz corpus through the dashboard upload ({seconds:.1f} s): {counts}")
    assert sum(counts.values()) + len(problems) == len(fuzz.kinds()) >= 100
    assert not problems, "\n".join(problems)
    assert seconds < MAX_SECONDS
