"""``stellar-nb dashboard``: prepare the data, then serve the Voila dashboard until interrupted.

The preparation (survey, model, survey cache) runs in a child process and the command then
becomes Voila (``os.execve``): the launcher holds no copy of the dashboard's memory beside the
kernels (it held 281 MB while Voila ran, issue 14).
"""

import os
import subprocess
import sys

from stellar_nb.commands import common

__all__ = ["configure_parser", "run"]


def configure_parser(parser):
    """Options of ``stellar-nb dashboard``."""
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    parser.add_argument(
        "--ip", default="localhost", help="interface to listen on (default localhost)"
    )
    common.add_model_argument(parser)
    common.add_survey_argument(
        parser, help="survey folder whose test split is shown (default: the simulated survey)"
    )
    parser.add_argument(
        "--sas-url", default=None, help="SDSS SAS base URL for plate-MJD-fiber downloads"
    )
    parser.add_argument("--open", action="store_true", help="open a web browser")


def run(args):
    """Prepare the data (survey, model, survey cache), then run Voila until interrupted."""
    from stellar_nb import config as settings
    from stellar_nb import simulate
    from stellar_nb.dashboard import serve

    config = common.config_from_args(args)
    model_dir = common.resolve_model_dir(args.model)
    sas_url = settings.service_url("sas", args.sas_url)
    print(
        "stellar-nb dashboard: preparing the survey, the model and the survey cache ...",
        flush=True,
    )
    survey = simulate.resolve_survey(args.survey, config)
    environment = serve.voila_environment(config, survey, model_dir=model_dir, sas_url=sas_url)
    # the kernel's own call, once, so that every kernel finds the survey cache built
    subprocess.run([sys.executable, "-c", "; ".join(serve.CELLS[:2])], env=environment, check=True)
    command = serve.voila_command(
        serve.notebook_path(config.data_home), port=args.port, ip=args.ip, open_browser=args.open
    )
    print(
        f"stellar-nb dashboard: serving on http://{args.ip}:{args.port}/ (Ctrl-C stops)", flush=True
    )
    os.execve(command[0], command, environment)
