"""The Voila dashboard: load a spectrum, see its predicted labels, residuals and trust flags.

Layers, each usable on its own:

- :mod:`~stellar_nb.dashboard.compute`: pure computation (reference data, one spectrum's analysis,
  uploads and SDSS downloads, trust flags);
- :mod:`stellar_nb.plots.dashboard`: the plotly figures;
- :mod:`~stellar_nb.dashboard.app`: widgets wired to one update function;
- :mod:`~stellar_nb.dashboard.upload`: a size-checked file upload;
- :mod:`~stellar_nb.dashboard.plotly_view`: a light plotly widget sharing one plotly.js per page;
- :mod:`~stellar_nb.dashboard.serve`: :func:`build_app` (the notebook's call) and
  ``stellar-nb dashboard`` (Voila on http://localhost:8866).

The kernel never imports TensorFlow: predictions come from :class:`stellar_nb.inference.NumpyModel`.
"""

from stellar_nb.dashboard.serve import build_app, configure_parser, run

__all__ = ["build_app", "configure_parser", "run"]
