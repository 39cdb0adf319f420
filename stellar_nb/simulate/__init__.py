"""The simulated SDSS DR12 stellar survey: the package's offline default data.

Each star's rest-frame spectrum comes from :mod:`stellar_nb.emulator` (fitted on the real MILES and
STELIB libraries, :mod:`stellar_nb.libraries`); :mod:`stellar_nb.simulate.observe` applies the
observing effects in the order an SDSS spectrum acquires them, and
:mod:`stellar_nb.simulate.survey` draws the labels and writes the splits:

1. labels from a SEGUE/SSPP-like mixture (:func:`sample_labels`), kept only where the emulator is
   trusted (near real library stars), so no impossible combination occurs;
2. a line-spread broadening of 0-2 pixels beyond R ~ 2000 (resolution varies over the spectrum, from
   fibre to fibre and from survey to survey); then the relativistic Doppler shift, 1 + z = sqrt((1 + beta) / (1 - beta)), from a disc + halo radial
   velocity distribution (halo stars are the metal-poor ones);
3. per-plate coverage on SDSS's 1e-4 log10-lambda grid, falling short of the paper's 3.5754-3.9670
   at one or both ends;
4. a flux scale of 10-300 x 1e-17 erg/s/cm^2/A (brighter stars have higher S/N), interstellar
   reddening (E(B-V) exponential, mean 0.05) and a smooth multiplicative flux-calibration error
   as wide as real LAMOST spectra show against the emulator;
5. noise from object + sky photons with a throughput that drops at the blue and red ends; the
   per-spectrum S/N (median flux * sqrt(ivar)) follows the paper's 10-121 range, with matching ivar;
6. ``and_mask``: BRIGHTSKY at strong sky lines (with sky-subtraction residuals in the flux) and
   bad CCD columns (ivar = 0);
7. catalogue labels = true + SSPP-like errors that grow at low S/N; the errors are stored.

Each of the realism levers was judged on real LAMOST DR10 stars (``stellar-nb bench real-stars``);
the held-out library residuals of :mod:`stellar_nb.simulate.residuals` made them worse and are off
by default (``--residuals``).

:func:`resolve_survey` is the one answer to "which survey folder?": an explicit folder, else
``$STELLAR_NB_SURVEY_DIR``, else the default simulated survey of the configuration.

Command line (:mod:`stellar_nb.commands.simulate`): ``stellar-nb simulate --n 50000 --seed 0 --out
DIR [--fits N]``, ``stellar-nb simulate --validate-emulator`` and ``stellar-nb simulate
--refit-emulator``.
"""

from stellar_nb.simulate.crb import crb_summary
from stellar_nb.simulate.residuals import fit_residual_bank
from stellar_nb.simulate.survey import (
    LABEL_RANGES,
    SPLIT_FRACTIONS,
    is_complete,
    resolve_survey,
    sample_labels,
    simulate_survey,
    split_sizes,
)

__all__ = [
    "LABEL_RANGES",
    "SPLIT_FRACTIONS",
    "crb_summary",
    "fit_residual_bank",
    "is_complete",
    "resolve_survey",
    "sample_labels",
    "simulate_survey",
    "split_sizes",
]
