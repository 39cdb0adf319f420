"""The whole paper in one call: ``stellar-nb reproduce`` and :func:`reproduce`.

A run goes through these stages, in order, each composed of the library's own functions:

1. ``survey``: :func:`stellar_nb.simulate.resolve_survey` (simulating the default survey on first
   use, or taking ``--survey``: the SDSS or benchmark data) and the label ranges of each split
   (Table 1);
2. ``tune``: :func:`stellar_nb.tune.tune`, the Bayesian search (``config.trials`` trials of
   ``config.tune_epochs`` epochs; the paper: 100), its trials kept in ``RUN/tuner/``;
3. ``train``: :func:`stellar_nb.train.train` with the best trial's architecture and training
   settings, ``config.epochs`` epochs, written to ``RUN/model/``;
4. ``evaluate``: :func:`stellar_nb.evaluate.evaluate` of that model on the test split, with the
   Cramer-Rao floor on the MAE (simulated data only: it needs the true labels) and the calibration
   of its uncertainties (ridge is left to the ``linear`` stage);
5. ``compare-<network>``, one per network of :data:`stellar_nb.comparison.NETWORKS`, then
   ``linear`` (OLS and ridge): :func:`stellar_nb.comparison.compare` (Tables 2-5);
6. ``report``: ``RUN/report.json`` and ``RUN/report.html`` (the tables next to the paper's,
   :mod:`stellar_nb.paper`, the time per stage and the figures, also in ``RUN/figures/``).

Each stage writes ``RUN/stages/<name>.json`` atomically when it finishes, with its wall seconds; a
run started again skips the finished stages, the tuner resumes its search from ``RUN/tuner/`` and
training resumes from its last checkpointed epoch, so a kill costs at most the unfinished part of
one stage. ``RUN/fingerprint.json`` records the settings (mode, seed, split sizes, epochs and
trials, data, Keras backend, networks); a run folder holding other settings is refused unless
``overwrite=True``.

The estimate of the time left, printed when each stage starts (:func:`estimate_seconds_left`), is
the remaining stages' epochs in units of one epoch of the paper's model (:data:`EPOCH_COST`: a
network's epoch costs its forward FLOPs relative to the paper model's) times the seconds per epoch
measured so far in this run, plus a fixed start-up (data preparation, graph building) per trial and
per trained network. Both come from the training stage (its mean epoch after the first; the rest of
its time is the start-up); before it has run, the search's seconds per trial epoch, start-ups
included, give an upper bound. The survey, evaluation, linear and report stages count as nothing.

:func:`load_results` reads a run folder's tables back as DataFrames; without a path it reads the
full run shipped in ``stellar_nb/resources/reproduction/``.
"""

import dataclasses
import html
import re
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from stellar_nb import files, paper, schema

__all__ = [
    "EPOCH_COST",
    "FIGURES",
    "FINGERPRINT",
    "TABLES",
    "estimate_seconds_left",
    "fingerprint",
    "format_number",
    "load_results",
    "reproduce",
    "shipped_dir",
    "stage_names",
]

#: File in a run folder recording the settings the run was made with.
FINGERPRINT = "fingerprint.json"

#: Cost of one epoch of each network, in epochs of the paper's model (forward FLOPs per spectrum
#: relative to its 1.08 MFLOP; the CNN's two convolutions and 15,936 x 256 dense layer ~12.6 MFLOP,
#: the DNN's 13.7 million weights ~27 MFLOP).
EPOCH_COST = {
    "residual MLP (paper)": 1.0,
    "no skip": 1.0,
    "no skip, no LayerNorm": 1.0,
    "single-task": 3.0,
    "CNN (Fabbro et al. 2017)": 12.0,
    "DNN (Li et al. 2017)": 25.0,
}

#: Report table name -> title (the paper's table numbers).
TABLES = {
    "table1": "Table 1: ranges of the catalogue labels in each split",
    "table2": "Table 2: linear baselines against the proposed model (test MAE)",
    "table3": "Table 3: neural baselines, test MAE and model complexity",
    "table4": "Table 4: relative to the DNN (= 1)",
    "table5": "Table 5: ablations, relative to the proposed model (= 1)",
    "evaluation": "The tuned model retrained: test metrics next to the Cramer-Rao floor",
    "stages": "Wall time per stage",
    "trials": "Search history: validation loss per trial",
}

#: Report figure name (``RUN/figures/<name>.json``) -> title.
FIGURES = {
    "search_history": "Search history: validation loss per trial",
    "kde_scatter": "The tuned model's predictions on the test split (the paper's Figure 5)",
    "error_vs_floor": "Every model's test MAE and the Cramer-Rao floor",
}

_MLP, _DNN = "residual MLP (paper)", "DNN (Li et al. 2017)"
_MAES = [f"mae_{label}" for label in schema.LABELS]
_FLOOR = "Cramer-Rao floor"


def shipped_dir():
    """Folder of the full run shipped with the package (``stellar_nb/resources/reproduction``)."""
    return Path(str(resources.files("stellar_nb") / "resources" / "reproduction"))


def _slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def stage_names(networks=None):
    """The stages of a run, in order, for ``networks`` (keys of ``comparison.NETWORKS``; all)."""
    networks = list(EPOCH_COST) if networks is None else list(networks)
    return [
        "survey",
        "tune",
        "train",
        "evaluate",
        *(f"compare-{_slug(name)}" for name in networks),
        "linear",
        "report",
    ]


def estimate_seconds_left(stages, config, seconds_per_epoch, networks=None, start_up=0.0):
    """Estimated seconds of ``stages`` (names from :func:`stage_names`), or None if not measured.

    Parameters
    ----------
    stages : sequence of str
        The stages still to run.
    config : stellar_nb.config.Config
        Trials, epochs per trial and epochs.
    seconds_per_epoch : float or None
        Measured seconds of one epoch of the paper's model on this run's data.
    networks : sequence of str, optional
        The networks compared (all of :data:`EPOCH_COST` by default).
    start_up : float
        Seconds each trial and each trained network takes besides its epochs.

    Returns
    -------
    float or None
        ``seconds_per_epoch`` times the stages' epochs weighted by :data:`EPOCH_COST`, plus
        ``start_up`` per trial and per network.
    """
    if seconds_per_epoch is None:
        return None
    networks = list(EPOCH_COST) if networks is None else list(networks)
    epochs = {"tune": config.trials * config.tune_epochs, "train": config.epochs}
    epochs |= {f"compare-{_slug(name)}": config.epochs * EPOCH_COST[name] for name in networks}
    starts = {"tune": config.trials, "train": 1} | {f"compare-{_slug(n)}": 1 for n in networks}
    return sum(
        float(seconds_per_epoch) * epochs.get(stage, 0.0) + start_up * starts.get(stage, 0)
        for stage in stages
    )


def fingerprint(config, survey, backend, networks=None, repeats=10):
    """What a run depends on: mode, seed, sizes, epochs, trials, data, backend, networks.

    Returns
    -------
    dict
        JSON-ready; equal dicts mean the same run.
    """
    settings = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name != "data_home"
    }
    return {
        "mode": "quick" if config.quick else "full",
        "settings": settings,
        "survey": str(Path(survey).resolve()),
        "backend": backend,
        "networks": list(EPOCH_COST) if networks is None else list(networks),
        "repeats": int(repeats),
    }


def _check_fingerprint(run_dir, expected, overwrite):
    """Refuse a run folder made with other settings (or start afresh with ``overwrite``)."""
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    path = run_dir / FINGERPRINT
    keys = files.fingerprint_difference(path, expected)
    if keys is None:
        return
    if not path.is_file():
        what = "files but no fingerprint (not a reproduction run folder?)"
    else:
        what = f"a run with other settings (differing: {', '.join(keys)})"
    raise ValueError(
        f"the run folder {run_dir} holds {what}; pass overwrite=True (stellar-nb reproduce "
        "--overwrite) to start afresh there, or choose another folder (--out)"
    )


def _stage(run_dir, name, compute, extra_seconds=0.0):
    """Run ``compute()`` unless ``RUN/stages/<name>.json`` exists; return (record, computed)."""
    path = run_dir / "stages" / f"{name}.json"
    if path.is_file():
        return files.read_json(path), False
    started = time.perf_counter()
    result = compute()
    record = {
        "stage": name,
        "seconds": time.perf_counter() - started + extra_seconds,
        "result": result,
    }
    files.write_json(path, record)
    return files.read_json(path), True  # as a resumed run reads it


def _survey_description(survey):
    from stellar_nb.data import tables

    ranges, rows = {}, {}
    for split in schema.SPLITS:
        labels = tables.read_split(survey, split, columns=list(schema.CATALOG_COLUMNS))
        rows[split] = len(labels)
        ranges[split] = {
            label: [float(labels[column].min()), float(labels[column].max())]
            for label, column in zip(schema.LABELS, schema.CATALOG_COLUMNS, strict=True)
        }
    simulated = (Path(survey) / schema.SURVEY_MANIFEST).is_file()
    return {
        "survey": str(survey),
        "data": "simulated" if simulated else "real",
        "rows": rows,
        "ranges": ranges,
        "tables": tables.fingerprint(survey),
    }


def _tune(config, survey, run_dir):
    from stellar_nb import tune

    # the search's trials live in the run folder: RUN/tuner/residual_mlp
    result = tune.tune(dataclasses.replace(config, data_home=run_dir), survey)
    result["trial_epochs"] = len(result["trials"]) * config.tune_epochs
    return result


def _train(config, survey, run_dir, best, progress):
    from stellar_nb import model, model_directory, train

    out = train.train(
        config,
        survey,
        run_dir / "model",
        architecture=best["architecture"],
        training=best["training"],
        progress=progress,
        calibration_stars=config.evaluation_stars,
    )
    metrics = files.read_json(out / "metrics.json")
    network = model_directory.load_keras_model(out)
    return {
        "model_dir": str(out),
        "parameters": model.count_parameters(network),
        "metrics": metrics,
    }


def _evaluate(config, survey, model_dir):
    from stellar_nb import evaluate

    return evaluate.evaluate(
        model_dir,
        survey,
        config=config,
        crb_stars=config.evaluation_stars,
        calibration_stars=config.evaluation_stars,
        ridge=False,  # the linear stage fits ridge (Table 2); once is enough
        seed=config.seed,
    )


def _compare(config, survey, networks, linear, repeats):
    from stellar_nb import comparison

    table = comparison.compare(config, survey, networks=networks, linear=linear, repeats=repeats)
    return table.reset_index().to_dict(orient="records")


def _epoch_costs(records):
    """(seconds per epoch, start-up seconds per network) measured so far; (None, 0) before."""
    train = records.get("train")
    if train is not None:
        seconds = train["result"]["metrics"]["seconds_per_epoch"]
        later = float(np.mean(seconds[1:] or seconds))  # the first includes tracing
        return later, max(train["seconds"] - later * len(seconds), 0.0)
    tuned = records.get("tune")
    if tuned is not None and tuned["result"]["trial_epochs"]:
        return tuned["seconds"] / tuned["result"]["trial_epochs"], 0.0
    return None, 0.0


def _duration(seconds):
    if seconds is None:
        return "unknown until a training stage has run"
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def reproduce(
    config=None,
    survey=None,
    run_dir=None,
    *,
    overwrite=False,
    progress=True,
    networks=None,
    repeats=10,
    command=None,
):
    """Run (or resume) the paper end to end and write its report.

    Parameters
    ----------
    config : stellar_nb.config.Config, optional
        Mode, seed, split sizes, epochs, trials and data home; :func:`~stellar_nb.config.get_config`
        by default (quick mode gives a few trials and epochs).
    survey : str or pathlib.Path, optional
        Survey folder (:func:`stellar_nb.simulate.resolve_survey`: the simulated one by default).
    run_dir : str or pathlib.Path, optional
        Run folder; ``config.reproduction_dir`` by default.
    overwrite : bool
        Discard the run folder's content and start afresh.
    progress : bool
        A progress bar over the stages and the estimate of the time left, on stderr.
    networks : sequence of str, optional
        Keys of :data:`stellar_nb.comparison.NETWORKS` to compare; all of them by default (the
        paper's Tables 3-5 need all).
    repeats : int
        Runs averaged for each network's inference time (the paper: 10).
    command : str, optional
        The command that made the run, quoted in the report.

    Returns
    -------
    pathlib.Path
        The run folder, holding ``report.json``, ``report.html``, ``figures/``, ``stages/``,
        ``model/`` and ``tuner/``.

    Raises
    ------
    ValueError
        If the run folder holds a run with other settings (the message names the folder) and
        ``overwrite`` is false, or ``networks`` names an unknown network.
    """
    import keras
    import tqdm

    from stellar_nb import simulate
    from stellar_nb.config import get_config

    config = config or get_config()
    networks = list(EPOCH_COST) if networks is None else list(networks)
    unknown = [name for name in networks if name not in EPOCH_COST]
    if unknown:
        raise ValueError(f"unknown network(s) {unknown}; allowed: {list(EPOCH_COST)}")
    run_dir = Path(run_dir) if run_dir is not None else config.reproduction_dir
    started = time.perf_counter()
    survey = simulate.resolve_survey(survey, config)  # simulates the default survey once
    resolve_seconds = time.perf_counter() - started
    expected = fingerprint(config, survey, keras.backend.backend(), networks, repeats)
    _check_fingerprint(run_dir, expected, overwrite)
    (run_dir / "stages").mkdir(parents=True, exist_ok=True)
    files.write_json(run_dir / FINGERPRINT, expected)
    command = command or (
        f"stellar_nb.reproduce.reproduce(get_config(quick={config.quick}, seed={config.seed}))"
    )

    names = stage_names(networks)
    records = {}
    compute = {
        "survey": lambda: _survey_description(survey),
        "tune": lambda: _tune(config, survey, run_dir),
        "train": lambda: _train(config, survey, run_dir, records["tune"]["result"], progress),
        "evaluate": lambda: _evaluate(config, survey, run_dir / "model"),
        "linear": lambda: _compare(config, survey, [], True, repeats),
        "report": lambda: _report(run_dir, records, config, command),
    }
    for name in networks:
        compute[f"compare-{_slug(name)}"] = lambda name=name: _compare(
            config, survey, [name], False, repeats
        )
    bar = tqdm.tqdm(total=len(names), desc="reproduce", unit="stage", disable=not progress)
    for number, name in enumerate(names):
        if progress and not (run_dir / "stages" / f"{name}.json").is_file():
            per_epoch, start_up = _epoch_costs(records)
            left = estimate_seconds_left(names[number:], config, per_epoch, networks, start_up)
            bar.write(
                f"stage {number + 1}/{len(names)} {name}: time left {_duration(left)}",
                file=sys.stderr,
            )
        extra = resolve_seconds if name == "survey" else 0.0
        records[name], _ = _stage(run_dir, name, compute[name], extra)
        bar.update(1)
    bar.close()
    return run_dir


def _frame(rows, index):
    return pd.DataFrame(rows).set_index(index) if rows else pd.DataFrame()


def _side_by_side(ours, theirs):
    """``ours`` with the paper's columns beside it (``paper_<column>``), rows in ``ours`` order."""
    theirs = theirs.reindex(ours.index)
    theirs.columns = [f"paper_{column}" for column in theirs.columns]
    return pd.concat([ours, theirs], axis=1)


def _relative(table, reference):
    from stellar_nb import comparison

    return comparison.relative_to(table, reference) if reference in table.index else table * np.nan


def _tables(records, config):
    survey = records["survey"]["result"]
    ours1 = pd.DataFrame(
        {
            f"{label}_{part}": [
                survey["ranges"][split][label][0]
                if part == "min"
                else survey["ranges"][split][label][1]
                if part == "max"
                else np.subtract(*survey["ranges"][split][label][::-1])
                for split in schema.SPLITS
            ]
            for label in schema.LABELS
            for part in ("min", "max", "range")
        },
        index=list(schema.SPLITS),
    )
    ours1.index.name = "split"
    ours1["rows"] = [survey["rows"][split] for split in schema.SPLITS]
    table1 = _side_by_side(ours1, paper.table(1))

    rows = [row for name, record in records.items() if name.startswith("compare-") or name == "linear"
            for row in record["result"]]  # fmt: skip
    compared = _frame(rows, "model")
    evaluation = records["evaluate"]["result"]
    floor = evaluation.get("crb_mae_floor")
    floor_row = (
        pd.DataFrame([{f"mae_{label}": floor[label] for label in schema.LABELS}], index=[_FLOOR])
        if floor
        else pd.DataFrame()
    )

    def section(names, columns, paper_number, reference=None):
        present = [name for name in names if name in compared.index]
        ours = compared.loc[present, columns]
        if reference is not None:
            ours = _relative(compared.loc[present, columns], reference)
            if floor and reference in compared.index:
                ours = pd.concat([ours, floor_row / compared.loc[reference, _MAES]])
        elif floor:
            ours = pd.concat([ours, floor_row])
        ours.index.name = "model"
        return _side_by_side(ours, paper.table(paper_number))

    complexity = [*_MAES, "parameters", "inference_s"]
    networks = [_MLP, "CNN (Fabbro et al. 2017)", _DNN]
    ablations = [_MLP, "no skip", "no skip, no LayerNorm", "single-task"]
    table2 = section(["OLS", "Ridge", _MLP], _MAES, 2)
    if {"Ridge", _MLP} <= set(compared.index):
        improvement = 1 - compared.loc[_MLP, _MAES] / compared.loc["Ridge", _MAES]
        table2.loc["improvement over ridge", _MAES] = improvement.to_numpy()
    tables = {
        "table1": table1,
        "table2": table2,
        "table3": section(networks, complexity, 3),
        "table4": section(networks, complexity, 4, reference=_DNN),
        "table5": section(ablations, complexity, 5, reference=_MLP),
    }
    from stellar_nb import evaluate

    summary = evaluate.summary_table(evaluation)
    summary["paper_mae"] = [paper.TEST_MAE[label] for label in schema.LABELS]
    summary["paper_mae_percent_of_range"] = [
        paper.MAE_PERCENT_OF_RANGE[label] for label in schema.LABELS
    ]
    summary.index.name = "label"
    tables["evaluation"] = summary
    stages = pd.DataFrame(
        {"seconds": [record["seconds"] for record in records.values()]}, index=list(records)
    )
    stages.index.name = "stage"
    tables["stages"] = stages
    trials = records["tune"]["result"]["trials"]
    tables["trials"] = (
        pd.DataFrame(
            [{"trial": t["trial"], "val_loss": t["val_loss"], **t["values"]} for t in trials]
        )
        .set_index("trial")
        .sort_index()
    )
    return tables


def _figures(records, run_dir, config):
    from stellar_nb import model_directory, plots

    survey = records["survey"]["result"]["survey"]
    model = model_directory.load(run_dir / "model")
    spectra, catalog, frame = model.preprocessor.transform_split(survey, "test")
    predicted = model.predict(spectra)
    has_truth = all(column in frame for column in schema.TRUE_COLUMNS)
    truth = frame[list(schema.TRUE_COLUMNS)].to_numpy() if has_truth else catalog
    reference = "true labels" if has_truth else "catalogue labels"
    figures = {
        "search_history": plots.plot_trial_history(records["tune"]["result"]["trials"]),
        "kde_scatter": plots.plot_kde_scatter(
            truth, predicted, title=f"Tuned model on the test split, against the {reference}",
            max_points=5000,
        ),
    }  # fmt: skip
    evaluation = records["evaluate"]["result"]
    if "crb_mae_floor" in evaluation:
        rows = [row for name, record in records.items()
                if name.startswith("compare-") or name == "linear" for row in record["result"]]  # fmt: skip
        errors = {row["model"]: [row[column] for column in _MAES] for row in rows}
        floor = [evaluation["crb_mae_floor"][label] for label in schema.LABELS]
        figures["error_vs_floor"] = plots.plot_error_vs_floor(errors, floor)
    return figures


def _basic_traces(figure):
    """The figure with its WebGL scatter traces drawn as SVG ones: the vendored plotly.js bundle
    (``resources/plotly``: scatter, bar and pie) has no ``scattergl``."""
    import plotly.graph_objects as go

    data = figure.to_plotly_json()
    for trace in data["data"]:
        if trace.get("type") == "scattergl":
            trace["type"] = "scatter"
    return go.Figure(data)


def _table_payload(table):
    values = table.astype(object).where(pd.notna(table), None)
    return {
        "index_name": table.index.name,
        "index": [str(name) for name in table.index],
        "columns": [str(column) for column in table.columns],
        "data": values.to_numpy().tolist(),
    }


def format_number(value):
    """Counts in full with thousands separators, other numbers to four significant digits."""
    if abs(value) >= 1000 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _report(run_dir, records, config, command):
    import plotly.io

    tables = _tables(records, config)
    figures = _figures(records, run_dir, config)
    folder = run_dir / "figures"
    folder.mkdir(exist_ok=True)
    figures = {name: _basic_traces(figure) for name, figure in figures.items()}
    for name, figure in figures.items():
        text = figure.to_json()
        files.atomic_write(
            folder / f"{name}.json", lambda path, text=text: Path(path).write_text(text)
        )
    fingerprint_record = files.read_json(run_dir / FINGERPRINT)
    survey = records["survey"]["result"]
    payload = {
        "paper": f"arXiv:{paper.ARXIV}",
        "command": command,
        "data": survey["data"],
        "survey": survey["survey"],
        "backend": fingerprint_record["backend"],
        "mode": fingerprint_record["mode"],
        "settings": fingerprint_record["settings"],
        "paper_claims": {f"table{number}": claim for number, claim in paper.CLAIMS.items()},
        "tables": {name: _table_payload(table) for name, table in tables.items()},
        "figures": sorted(f"figures/{name}.json" for name in figures),
    }
    sections = []
    for name, table in tables.items():
        claim = paper.CLAIMS.get(int(name[-1])) if name.startswith("table") else None
        note = f"<p class='claim'>The paper: {html.escape(claim)}.</p>" if claim else ""
        sections.append(
            f"<h2 id='{name}'>{html.escape(TABLES[name])}</h2>{note}"
            + table.to_html(float_format=format_number, na_rep="-")
        )
    for name, figure in figures.items():
        sections.append(
            f"<h2 id='{name}'>{html.escape(FIGURES[name])}</h2>"
            + plotly.io.to_html(figure, full_html=False, include_plotlyjs=False)
        )
    plotly_js = (
        resources.files("stellar_nb") / "resources" / "plotly" / "plotly-basic.min.js"
    ).read_text()
    settings = ", ".join(f"{key} {value}" for key, value in payload["settings"].items())
    head = (
        f"<p>Data: <b>{html.escape(survey['data'])}</b> ({html.escape(survey['survey'])}); "
        f"{html.escape(payload['mode'])} mode; Keras backend {html.escape(payload['backend'])}; "
        f"settings: {html.escape(settings)}.</p><p>Made by <code>{html.escape(command)}</code>."
        " Our MAEs in Tables 2-5 are against the catalogue labels (as the paper's, against SSPP);"
        " the Cramer-Rao floor is against the true labels of the simulated survey. Columns"
        " <code>paper_*</code> hold the paper's numbers where its text states them"
        " (<code>stellar_nb.paper</code>); '-' where it does not.</p>"
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Reproduction of arXiv:{paper.ARXIV}</title><script>{plotly_js}</script>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border:1px solid #ccc}"
        ".claim{color:#555}</style></head><body>"
        f"<h1>Reproduction of arXiv:{paper.ARXIV}</h1>{head}{''.join(sections)}</body></html>"
    )
    files.write_json(run_dir / "report.json", payload)
    files.atomic_write(run_dir / "report.html", lambda path: Path(path).write_text(page))
    return {"report": str(run_dir / "report.json"), "html": str(run_dir / "report.html")}


def load_results(path=None):
    """The tables of a run folder (``report.json``) as DataFrames.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A run folder, or its ``report.json``; the full run shipped in
        ``stellar_nb/resources/reproduction/`` (:func:`shipped_dir`) by default.

    Returns
    -------
    dict
        Table name (:data:`TABLES`: ``table1`` ... ``table5``, ``evaluation``, ``stages``,
        ``trials``) -> pandas.DataFrame; ``paper_*`` columns hold the paper's numbers.

    Raises
    ------
    FileNotFoundError
        If the folder holds no ``report.json`` (the message names the folder).
    """
    folder = Path(path) if path is not None else shipped_dir()
    report = folder if folder.suffix == ".json" else folder / "report.json"
    if not report.is_file():
        raise FileNotFoundError(
            f"no reproduction results in {report.parent} (no report.json): run "
            f"`stellar-nb reproduce --out {report.parent}` to make them"
        )
    payload = files.read_json(report)
    tables = {}
    for name, table in payload["tables"].items():
        frame = pd.DataFrame(table["data"], index=table["index"], columns=table["columns"])
        frame = frame.apply(_numeric)
        frame.index.name = table["index_name"]
        tables[name] = frame
    return tables


def _numeric(column):
    """A column of numbers and None (JSON's NaN) as floats; any other column as it is."""
    numbers = all(value is None or isinstance(value, int | float) for value in column)
    return column.astype(float) if numbers and not column.map(type).eq(bool).any() else column
