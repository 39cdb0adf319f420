"""Property-based tests (hypothesis) of the preprocessing invariants over random spectra."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stellar_nb import doppler, schema
from stellar_nb import preprocess as pp

GRID = schema.grid_loglam()
STEP = GRID[1] - GRID[0]


@st.composite
def spectra(draw):
    """1-4 spectra on the SDSS lattice with random coverage, fluxes, bad pixels and RVs."""
    count = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    loglams, fluxes, ivars, masks = [], [], [], []
    for _ in range(count):
        length = draw(st.integers(4, 900))
        first = draw(st.integers(35700, 39700 - length))
        loglams.append(((first + np.arange(length)) * 1e-4).astype(np.float32))
        scale = draw(st.floats(1e-3, 1e4))
        fluxes.append((scale * rng.lognormal(0.0, 0.5, length)).astype(np.float32))
        ivar = (rng.random(length) > draw(st.floats(0.0, 0.3))).astype(np.float32)
        ivars.append(ivar)
        masks.append(np.where(rng.random(length) < 0.05, 1 << 23, 0).astype(np.int32))
    rv = np.array([draw(st.floats(-2900.0, 2900.0)) for _ in range(count)])
    method = draw(st.sampled_from(["paper", "single"]))
    return loglams, fluxes, ivars, masks, rv, method


@settings(max_examples=60, deadline=None)
@given(spectra())
def test_output_shape_finite_standardised(case):
    loglams, fluxes, ivars, masks, rv, method = case
    X, flags = pp.preprocess_spectra(loglams, fluxes, ivars, masks, rv, method=method)
    assert X.shape == (len(fluxes), 4000) and X.dtype == np.float32
    assert np.all(np.isfinite(X))
    good = flags == 0
    np.testing.assert_allclose(X[good].mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(X[good].std(axis=1), 1.0, atol=1e-5)
    assert np.all(X[~good] == 0.0)
    for row in np.flatnonzero(~good):
        # only two reasons are possible here: too few good pixels, or no variation on the grid
        reasons = set(pp.describe_flags(flags[row]))
        assert reasons <= {"too_short", "constant"}
        good_pixels = np.count_nonzero(~pp.bad_pixels(ivars[row], masks[row]))
        assert ("too_short" in reasons) == (good_pixels < 4)


def _rv_for_steps(steps):
    """Radial velocity whose relativistic log10(1 + z) is ``steps`` grid steps."""
    ratio = 10.0 ** (2 * steps * STEP)
    return schema.C_KM_S * (ratio - 1) / (ratio + 1)


@settings(max_examples=40, deadline=None)
@given(st.integers(-40, 40), st.integers(0, 2**32 - 1))
def test_whole_step_shift_round_trips(steps, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2, 4000)).cumsum(axis=1)
    rv = _rv_for_steps(steps)
    assert abs(float(doppler.loglam_shift(rv)) - steps * STEP) < 1e-15
    shifted = pp.rest_frame(X, rv)
    # a whole-step shift moves the samples: spline values at the knots are the data
    inner = slice(max(0, -steps), 4000 - max(0, steps))
    np.testing.assert_allclose(
        shifted[:, inner], X[:, inner.start + steps : inner.stop + steps], atol=1e-8
    )
    back = pp.rest_frame(shifted, -rv)
    keep = slice(abs(steps), 4000 - abs(steps))
    np.testing.assert_allclose(back[:, keep], X[:, keep], atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-2900.0, 2900.0))
def test_fast_path_equals_naive_loop(seed, rv):
    from stellar_nb.preprocess import naive

    rng = np.random.default_rng(seed)
    length = int(rng.integers(4, 3000))
    first = int(rng.integers(35600, 39800 - length))
    loglam = ((first + np.arange(length)) * 1e-4).astype(np.float32)
    flux = rng.lognormal(0, 0.3, length)
    ivar = (rng.random(length) > 0.1).astype(float)
    X, flags = pp.preprocess_spectra([loglam], [flux], [ivar], None, rv)
    expected = naive.naive_preprocess([loglam], [flux], [ivar], None, rv)
    if flags[0] == 0:
        assert np.abs(X[0] - expected[0]).max() < 1e-5
    else:
        assert np.all(X[0] == 0)
