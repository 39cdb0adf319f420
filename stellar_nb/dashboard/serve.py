"""Build the dashboard (the notebook's one call) and serve it with Voila (``stellar-nb dashboard``).

The Voila notebook ``notebooks/dashboard.ipynb`` is three cells (:data:`CELLS`): import, build,
display. :func:`build_app` resolves its settings with the package's resolvers, which read the
environment that ``stellar-nb dashboard`` (:mod:`stellar_nb.commands.dashboard`) sets for the
kernel (:func:`voila_environment`): the model directory (:func:`stellar_nb.config.model_dir`,
``STELLAR_NB_MODEL_DIR``; default the pretrained model shipped in the package), the survey
(:func:`stellar_nb.simulate.resolve_survey`, ``STELLAR_NB_SURVEY_DIR``; default the simulated
survey of the configuration, generated on first use), the SAS URL
(:func:`stellar_nb.config.service_url`, ``STELLAR_NB_SAS_URL``), plus the usual ``STELLAR_NB_DATA``
and ``STELLAR_NB_QUICK``.

Voila's settings live in ``stellar_nb/resources/voila``: ``voila.json`` for the standalone server
and ``jupyter_server_config.json`` for the Voila server extension (Binder's
``?urlpath=voila/render/notebooks/dashboard.ipynb``). Both raise tornado's websocket message limit
to :data:`WEBSOCKET_MAX_BYTES`, just above the upload limit, since an uploaded file travels as one
websocket message; larger files are refused by the browser before sending
(:mod:`stellar_nb.dashboard.upload`). Both also load only the JupyterLab extensions the page
uses (the widget managers and anywidget): Voila otherwise loads every installed one, and
jupyterlab-plotly alone brings 4.8 MB of JavaScript the dashboard does not need.

Kernels for a class (issue 14), in ``voila.json``:

- a pool of preheated kernels (``default_pool_size``) refilled at once (``fill_delay``), so
  that visitors arriving together do not queue behind one kernel;
- a closed tab's kernel is shut down: Voila's page sends ``POST /voila/api/shutdown/<id>`` on
  ``beforeunload`` with the ``_xsrf`` cookie's value, but a page served from the preheated pool
  is rendered before any request and never sets that cookie, so every shutdown was refused
  (403). The standalone server serves this one page without authentication, where an XSRF check
  protects nothing, so it does not check (``disable_check_xsrf``); the Jupyter server of the
  server extension keeps its checks (its pages are rendered per request and set the cookie);
- kernels left without a connection (a browser that crashed, a lost request) are culled after
  :data:`idle minutes <CULL_IDLE_MINUTES>` (``MappingKernelManager.cull_*``, both files;
  Voila never culls its pool);
- the kernel's pyarrow uses the system allocator (:func:`voila_environment`): pyarrow's own keeps
  freed memory in every kernel.
"""

import os
import sys
from importlib import resources
from pathlib import Path

__all__ = [
    "CELLS",
    "CULL_IDLE_MINUTES",
    "TITLE",
    "VOILA_CONFIG_DIR",
    "build_app",
    "notebook_path",
    "voila_command",
    "voila_environment",
]

#: The page's title (the notebook's ``title`` metadata, which Voila's template shows).
TITLE = "stellar_nb: stellar parameters from a spectrum"
#: The three cells of the dashboard notebook: import, build, display.
CELLS = ("from stellar_nb import dashboard", "app = dashboard.build_app()", "app.widget")
#: Websocket message limit given to tornado (bytes): the upload limit plus room for the framing.
WEBSOCKET_MAX_BYTES = 24 * 1024 * 1024
#: Minutes an idle kernel without a connection lives (``cull_idle_timeout`` of both files).
CULL_IDLE_MINUTES = 15
#: Folder with voila.json and jupyter_server_config.json.
VOILA_CONFIG_DIR = Path(str(resources.files("stellar_nb") / "resources" / "voila"))


def build_app(config=None, *, model_dir=None, survey=None, sas_url=None, first=None):
    """Load the model, emulator and survey cache and return a :class:`~stellar_nb.dashboard.app.Dashboard`.

    The first test star (the one nearest the median S/N) is already analysed and shown.

    Parameters
    ----------
    config : stellar_nb.config.Config, optional
        Data home and quick mode; :func:`~stellar_nb.config.get_config` by default.
    model_dir : str or pathlib.Path, optional
        Saved model directory; default :func:`stellar_nb.config.model_dir` (``$STELLAR_NB_MODEL_DIR``,
        else the shipped pretrained model).
    survey : str or pathlib.Path, optional
        Survey folder with train/test splits; default :func:`stellar_nb.simulate.resolve_survey`
        (``$STELLAR_NB_SURVEY_DIR``, else the default simulated survey of ``config``).
    sas_url : str, optional
        SDSS SAS base URL for downloads; default :func:`stellar_nb.config.service_url`
        (``$STELLAR_NB_SAS_URL``, else the public DR12 server).
    first : str or int, optional
        spec_id of the test star shown first (default: the one nearest the median S/N).
    """
    from stellar_nb import config as settings
    from stellar_nb import emulator, model_directory, simulate
    from stellar_nb.dashboard import app, survey_cache

    config = config or settings.get_config()
    model_dir = settings.model_dir(model_dir)
    model = model_directory.load(model_dir)
    survey = simulate.resolve_survey(survey, config)
    cache = survey_cache.build_survey_cache(survey, model, config.dashboard_cache_dir)
    return app.Dashboard(
        model,
        emulator.load_emulator(),
        cache,
        survey,
        sas_url=settings.service_url("sas", sas_url),
        first=first,
    )


def notebook_path(data_home=None):
    """The dashboard notebook: ``notebooks/dashboard.ipynb`` of the checkout, else a copy in the data home."""
    checkout = Path(__file__).resolve().parents[2] / "notebooks" / "dashboard.ipynb"
    if checkout.is_file():
        return checkout
    import nbformat

    from stellar_nb.config import get_config

    path = get_config(data_home=data_home).dashboard_cache_dir / "dashboard.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in CELLS])
    notebook.metadata["title"] = TITLE
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path


def voila_command(notebook, *, port=8866, ip="localhost", open_browser=False):
    """The Voila command line serving ``notebook`` with the dashboard's settings."""
    return [
        sys.executable, "-m", "voila", str(notebook), f"--port={int(port)}", f"--Voila.ip={ip}",
        "--no-browser" if not open_browser else "--Voila.open_browser=True",
        f"--Voila.config_file_paths={VOILA_CONFIG_DIR}",
    ]  # fmt: skip


def voila_environment(config, survey, *, model_dir=None, sas_url=None):
    """Environment for the Voila process: the kernel's :func:`build_app` resolves these settings."""
    environment = dict(
        os.environ,
        # pyarrow's default allocator keeps freed memory in each process: 20 MB more per kernel
        ARROW_DEFAULT_MEMORY_POOL="system",
        STELLAR_NB_DATA=str(config.data_home),
        STELLAR_NB_QUICK="1" if config.quick else "0",
        STELLAR_NB_SURVEY_DIR=str(survey),
    )
    for name, value in (("STELLAR_NB_MODEL_DIR", model_dir), ("STELLAR_NB_SAS_URL", sas_url)):
        if value:
            environment[name] = str(value)
    return environment
