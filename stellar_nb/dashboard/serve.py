"""Build the dashboard (the notebook's one call) and serve it with Voila (``stellar-nb dashboard``).

The Voila notebook ``notebooks/dashboard.ipynb`` is three cells (:data:`CELLS`): import, build,
display. :func:`build_app` reads its settings from the environment, which ``stellar-nb dashboard``
sets for the kernel: ``STELLAR_NB_MODEL_DIR`` (default: the pretrained model shipped in the
package), ``STELLAR_NB_SURVEY_DIR`` (default: the simulated survey of the configuration, generated on
first use), ``STELLAR_NB_SAS_URL``, plus the usual ``STELLAR_NB_DATA`` and ``STELLAR_NB_QUICK``.

Voila's settings live in ``stellar_nb/resources/voila``: ``voila.json`` for the standalone server
and ``jupyter_server_config.json`` for the Voila server extension (Binder's
``?urlpath=voila/render/notebooks/dashboard.ipynb``). Both raise tornado's websocket message limit
to :data:`WEBSOCKET_MAX_BYTES`, just above the upload limit, since an uploaded file travels as one
websocket message; larger files are refused by the browser before sending
(:mod:`stellar_nb.dashboard.upload`). Both also load only the JupyterLab extensions the page
uses (the widget managers and anywidget): Voila otherwise loads every installed one, and
jupyterlab-plotly alone brings 4.8 MB of JavaScript the dashboard does not need.
"""

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

__all__ = [
    "CELLS",
    "VOILA_CONFIG_DIR",
    "build_app",
    "configure_parser",
    "notebook_path",
    "run",
    "voila_command",
    "voila_environment",
]

#: The three cells of the dashboard notebook: import, build, display.
CELLS = ("from stellar_nb import dashboard", "app = dashboard.build_app()", "app.widget")
#: Websocket message limit given to tornado (bytes): the upload limit plus room for the framing.
WEBSOCKET_MAX_BYTES = 24 * 1024 * 1024
#: Folder with voila.json and jupyter_server_config.json.
VOILA_CONFIG_DIR = Path(str(resources.files("stellar_nb") / "resources" / "voila"))


def build_app(config=None, *, model_dir=None, survey_dir=None, sas_url=None, first=None):
    """Load the model, emulator and reference data and return a :class:`~stellar_nb.dashboard.app.Dashboard`.

    The first test star (the one nearest the median S/N) is already analysed and shown.

    Parameters
    ----------
    config : stellar_nb.config.Config, optional
        Data home and quick mode; :func:`~stellar_nb.config.get_config` by default.
    model_dir : str or pathlib.Path, optional
        Saved model directory; ``$STELLAR_NB_MODEL_DIR``, else the shipped pretrained model.
    survey_dir : str or pathlib.Path, optional
        Survey folder with train/test splits; ``$STELLAR_NB_SURVEY_DIR``, else the default
        simulated survey of ``config``.
    sas_url : str, optional
        SDSS SAS base URL for downloads; ``$STELLAR_NB_SAS_URL``, else the public DR12 server.
    first : str or int, optional
        spec_id of the test star shown first (default: the one nearest the median S/N).
    """
    from stellar_nb import emulator, inference
    from stellar_nb.config import get_config
    from stellar_nb.dashboard import app, compute

    config = config or get_config()
    model_dir = model_dir or os.environ.get("STELLAR_NB_MODEL_DIR")
    model = inference.NumpyModel.load(model_dir) if model_dir else inference.load_pretrained()
    survey_dir = survey_dir or os.environ.get("STELLAR_NB_SURVEY_DIR") or _default_survey(config)
    reference = compute.build_reference(survey_dir, model, config.data_home / "dashboard")
    return app.Dashboard(
        model,
        emulator.load_emulator(),
        reference,
        survey_dir,
        sas_url=sas_url or os.environ.get("STELLAR_NB_SAS_URL"),
        first=first,
    )


def _default_survey(config):
    from stellar_nb import simulate

    return simulate.default_survey(config)


def notebook_path(data_home=None):
    """The dashboard notebook: ``notebooks/dashboard.ipynb`` of the checkout, else a copy in the data home."""
    checkout = Path(__file__).resolve().parents[2] / "notebooks" / "dashboard.ipynb"
    if checkout.is_file():
        return checkout
    import nbformat

    from stellar_nb.config import data_home as default_home

    path = Path(data_home or default_home()) / "dashboard" / "dashboard.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in CELLS])
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


def voila_environment(config, survey_dir, *, model_dir=None, sas_url=None):
    """Environment for the Voila process: the kernel's :func:`build_app` reads these settings."""
    environment = dict(
        os.environ,
        STELLAR_NB_DATA=str(config.data_home),
        STELLAR_NB_QUICK="1" if config.quick else "0",
        STELLAR_NB_SURVEY_DIR=str(survey_dir),
    )
    for name, value in (("STELLAR_NB_MODEL_DIR", model_dir), ("STELLAR_NB_SAS_URL", sas_url)):
        if value:
            environment[name] = str(value)
    return environment


def configure_parser(parser):
    """Options of ``stellar-nb dashboard``."""
    from stellar_nb.cli import add_common_arguments

    add_common_arguments(parser)
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    parser.add_argument(
        "--ip", default="localhost", help="interface to listen on (default localhost)"
    )
    parser.add_argument(
        "--model-dir", default=None, help="saved model directory (default: the pretrained model)"
    )
    parser.add_argument(
        "--survey-dir",
        default=None,
        help="survey folder whose test split is shown (default: the simulated survey)",
    )
    parser.add_argument(
        "--sas-url", default=None, help="SDSS SAS base URL for plate-MJD-fiber downloads"
    )
    parser.add_argument("--open", action="store_true", help="open a web browser")


def run(args):
    """Prepare the data (survey, model, cached reference), then run Voila until interrupted."""
    from stellar_nb.cli import config_from_args

    config = config_from_args(args)
    print(
        "stellar-nb dashboard: preparing the survey, the model and the reference data ...",
        flush=True,
    )
    dashboard = build_app(
        config, model_dir=args.model_dir, survey_dir=args.survey_dir, sas_url=args.sas_url
    )
    environment = voila_environment(
        config, dashboard.survey_dir, model_dir=args.model_dir, sas_url=args.sas_url
    )
    command = voila_command(
        notebook_path(config.data_home), port=args.port, ip=args.ip, open_browser=args.open
    )
    print(
        f"stellar-nb dashboard: serving on http://{args.ip}:{args.port}/ (Ctrl-C stops)", flush=True
    )
    try:
        return subprocess.call(command, env=environment)
    except KeyboardInterrupt:
        return 0
