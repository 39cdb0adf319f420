"""``stellar-nb dashboard``: prepare the data, then serve the Voila dashboard until interrupted."""

import subprocess

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
    serve.build_app(config, model_dir=model_dir, survey=survey, sas_url=sas_url)
    environment = serve.voila_environment(config, survey, model_dir=model_dir, sas_url=sas_url)
    command = serve.voila_command(
        serve.notebook_path(config.data_home), port=args.port, ip=args.ip, open_browser=args.open
    )
    print(
        f"stellar-nb dashboard: serving on http://{args.ip}:{args.port}/ (Ctrl-C stops)", flush=True
    )
    try:
        return subprocess.call(command, env=environment)
    except KeyboardInterrupt:
        return 0
