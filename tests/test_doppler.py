"""Tests of stellar_nb.doppler: the relativistic Doppler shift and its inverse."""

import numpy as np
import pytest

from stellar_nb import doppler, schema


def test_loglam_shift_is_the_relativistic_formula_at_300_km_s():
    shift = doppler.loglam_shift(300.0)
    beta = 300.0 / schema.C_KM_S
    assert shift == pytest.approx(np.log10(np.sqrt((1 + beta) / (1 - beta))), rel=1e-12)
    assert shift == pytest.approx(4.345952828e-4, rel=1e-9)
    assert doppler.wavelength_factor(300.0) == pytest.approx(1.0010011935, rel=1e-10)
    assert 10.0 ** doppler.loglam_shift(300.0) == pytest.approx(doppler.wavelength_factor(300.0))


def test_negative_velocities_shift_blueward_by_the_same_amount():
    assert doppler.loglam_shift(-300.0) == pytest.approx(-doppler.loglam_shift(300.0))
    assert doppler.loglam_shift(0.0) == 0.0
    velocity = np.array([-500.0, -20.0, 20.0, 500.0])
    assert np.all(np.sign(doppler.loglam_shift(velocity)) == np.sign(velocity))
    np.testing.assert_allclose(
        doppler.wavelength_factor(-velocity), 1.0 / doppler.wavelength_factor(velocity), rtol=1e-14
    )


def test_velocity_from_redshift_inverts_the_shift():
    velocity = np.array([-300.0, 0.0, 250.0, 30_000.0])
    beta = velocity / schema.C_KM_S
    z = np.sqrt((1 + beta) / (1 - beta)) - 1
    np.testing.assert_allclose(doppler.velocity_from_redshift(z), velocity, atol=1e-8)
    round_trip = doppler.velocity_from_redshift(doppler.wavelength_factor(velocity) - 1.0)
    np.testing.assert_allclose(round_trip, velocity, atol=1e-8)
    assert doppler.velocity_from_redshift(1e-3) == pytest.approx(299.642, abs=1e-3)


@pytest.mark.parametrize("velocity", [schema.C_KM_S, -schema.C_KM_S, 2 * schema.C_KM_S])
def test_velocities_at_or_beyond_light_raise(velocity):
    with pytest.raises(ValueError, match="speed of light"):
        doppler.loglam_shift(velocity)
    with pytest.raises(ValueError, match="speed of light"):
        doppler.wavelength_factor(velocity)


def test_redshift_at_or_below_minus_one_raises():
    with pytest.raises(ValueError, match="above -1"):
        doppler.velocity_from_redshift(-1.0)
