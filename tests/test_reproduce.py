"""Tests of stellar_nb.reproduce and ``stellar-nb reproduce``: one tiny end-to-end run, resumed.

The module's fixture runs the whole pipeline once on a tiny simulated survey (1 trial of 1 epoch,
1 training epoch, every network of the comparison but the single-task one, whose three trunks
take a third of the time to build), first with the ``linear`` stage made to fail, as a kill
would leave it, then again: the second run must finish from the stages the first left.
"""

import dataclasses
import html
import json
import math

import numpy as np
import pandas as pd
import pytest

from stellar_nb import commands, comparison, config, model, paper, reproduce, schema, simulate
from stellar_nb import train as train_module
from stellar_nb import tune as tune_module

MAES = [f"mae_{label}" for label in schema.LABELS]
NETWORKS = [name for name in comparison.NETWORKS if name != "single-task"]


class Killed(RuntimeError):
    """Stands for a kill during the linear stage."""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return config.get_config(
        quick=True,
        data_home=tmp_path_factory.mktemp("reproduce_home"),
        n_train=200,
        n_validation=60,
        n_test=60,
        trials=1,
        tune_epochs=1,
        epochs=1,
        evaluation_stars=20,
    )


@pytest.fixture(scope="module")
def run(tiny_config, tmp_path_factory):
    """(run folder, stage files' mtimes after the killed run, calls made by the resumed run)."""
    survey = simulate.resolve_survey(config=tiny_config)
    run_dir = tmp_path_factory.mktemp("reproduction") / "run"
    compare = comparison.compare

    def failing_linear(*args, linear=True, **options):
        if linear:
            raise Killed("killed during the linear baselines")
        return compare(*args, linear=linear, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(comparison, "compare", failing_linear)
        with pytest.raises(Killed):
            reproduce.reproduce(
                tiny_config, survey, run_dir, progress=False, repeats=1, networks=NETWORKS
            )
    before = {path.name: path.stat().st_mtime_ns for path in (run_dir / "stages").iterdir()}
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for module, name in (
            (tune_module, "tune"),
            (train_module, "train"),
            (comparison, "compare"),
        ):
            original = getattr(module, name)

            def counted(*args, original=original, name=name, **options):
                calls.append(name)
                return original(*args, **options)

            patch.setattr(module, name, counted)
        reproduce.reproduce(
            tiny_config, survey, run_dir, progress=False, repeats=1, networks=NETWORKS
        )
    return run_dir, before, calls


def test_a_killed_run_resumes_without_redoing_finished_stages(run):
    run_dir, before, calls = run
    names = reproduce.stage_names(NETWORKS)
    assert sorted(before) == sorted(f"{name}.json" for name in names[:-2])  # not linear, report
    assert calls == ["compare"]  # the linear baselines only: no search, no training again
    for name, mtime in before.items():
        assert (run_dir / "stages" / name).stat().st_mtime_ns == mtime
    for name in names:
        record = json.loads((run_dir / "stages" / f"{name}.json").read_text())
        assert record["stage"] == name and record["seconds"] > 0


def test_report_tables_hold_ours_and_the_papers_numbers(run, tiny_config):
    run_dir, _, _ = run
    tables = reproduce.load_results(run_dir)
    assert set(tables) == set(reproduce.TABLES)
    evaluation = json.loads((run_dir / "stages" / "evaluate.json").read_text())["result"]
    floor = np.array([evaluation["crb_mae_floor"][label] for label in schema.LABELS])
    assert np.all(floor > 0)

    table1 = tables["table1"]
    assert list(table1.index) == list(schema.SPLITS)
    assert list(table1["rows"]) == [200, 60, 60]
    assert table1.loc["test", "paper_teff_range"] == paper.TEST_RANGE["teff"]
    np.testing.assert_allclose(table1["teff_range"], table1["teff_max"] - table1["teff_min"])

    compared = set(NETWORKS) | {"OLS", "Ridge"}
    table2, table3 = tables["table2"], tables["table3"]
    assert list(table2.index) == ["OLS", "Ridge", "residual MLP (paper)", "Cramer-Rao floor",
                                  "improvement over ridge"]  # fmt: skip
    np.testing.assert_allclose(table2.loc["Cramer-Rao floor", MAES], floor)
    assert table2.loc["residual MLP (paper)", "paper_mae_teff"] == paper.TEST_MAE["teff"]
    rows = pd.concat([tables[name][MAES] for name in ("table2", "table3", "table5")])
    assert compared <= set(rows.index)
    assert np.isfinite(rows.to_numpy(dtype=float)).all()
    # a one-epoch network and the linear fits cannot beat the noise floor of these spectra
    assert (table3.loc[table3.index != "Cramer-Rao floor", MAES].to_numpy() > floor).all()
    assert (table2.loc[["OLS", "Ridge"], MAES].to_numpy() > floor).all()
    improvement = 1 - table2.loc["residual MLP (paper)", MAES] / table2.loc["Ridge", MAES]
    np.testing.assert_allclose(table2.loc["improvement over ridge", MAES], improvement)

    for name in NETWORKS:
        built = model.count_parameters(comparison.NETWORKS[name](schema.GRID_SIZE, 0))
        where = table3 if name in table3.index else None
        stage = json.loads(
            (run_dir / "stages" / f"compare-{reproduce._slug(name)}.json").read_text()
        )["result"][0]
        assert stage["parameters"] == built
        if where is not None:
            assert where.loc[name, "parameters"] == built
    assert table3.loc["residual MLP (paper)", "paper_parameters"] == 542_771

    table4, table5 = tables["table4"], tables["table5"]
    np.testing.assert_allclose(table4.loc["DNN (Li et al. 2017)", [*MAES, "parameters"]], 1.0)
    np.testing.assert_allclose(
        table4.loc["residual MLP (paper)", "parameters"],
        table3.loc["residual MLP (paper)", "parameters"] / table3.loc["DNN (Li et al. 2017)", "parameters"],
    )  # fmt: skip
    np.testing.assert_allclose(table5.loc["residual MLP (paper)", MAES], 1.0)
    assert list(table5.index) == ["residual MLP (paper)", "no skip", "no skip, no LayerNorm",
                                  "Cramer-Rao floor"]  # fmt: skip
    assert table5.loc["no skip", "parameters"] < 1  # no projection on the skip path
    assert math.isnan(table5.loc["no skip", "paper_mae_teff"])  # the text gives no number

    summary = tables["evaluation"]
    np.testing.assert_allclose(summary["crb_mae_floor"], floor)
    assert (summary["ratio_to_floor"] > 1).all()
    assert list(summary["paper_mae"]) == [paper.TEST_MAE[label] for label in schema.LABELS]
    trained = json.loads((run_dir / "stages" / "train.json").read_text())["result"]
    tuned = json.loads((run_dir / "stages" / "tune.json").read_text())["result"]
    assert trained["metrics"]["epochs"] == tiny_config.epochs
    spec = model.architecture(**tuned["architecture"])
    assert trained["parameters"] == model.count_parameters(model.build_model(**spec))
    assert list(tables["trials"]["val_loss"]) == [tuned["val_loss"]]
    assert list(tables["stages"].index) == reproduce.stage_names(NETWORKS)[:-1]
    assert (tables["stages"]["seconds"] > 0).all()


def test_html_report_is_self_contained_with_tables_and_figures(run):
    run_dir, _, _ = run
    head, body = (run_dir / "report.html").read_text().split("<body>")
    for title in reproduce.TABLES.values():
        assert title in body
    assert body.count("<table") == len(reproduce.TABLES)
    assert "59.76" in body and "542,771" in body  # the paper's numbers beside ours
    for title in reproduce.FIGURES.values():
        assert html.escape(title) in body
    assert "<script src=" not in head + body and "cdn" not in body  # nothing fetched
    vendored = (reproduce.resources.files("stellar_nb") / "resources" / "plotly").joinpath(
        "plotly-basic.min.js"
    )
    assert vendored.read_text() in head  # plotly.js inline
    assert body.count("Plotly.newPlot") == 3
    report = json.loads((run_dir / "report.json").read_text())
    assert report["data"] == "simulated" and report["mode"] == "quick"
    assert report["settings"]["trials"] == 1 and report["backend"] in {"jax", "tensorflow"}
    for figure in report["figures"]:
        drawn = json.loads((run_dir / figure).read_text())
        # the inline bundle draws SVG scatter, bar and pie only: no scattergl
        assert drawn["data"] and all(trace["type"] in {"scatter", "bar"} for trace in drawn["data"])


def test_other_settings_in_the_same_folder_are_refused(run, tiny_config):
    run_dir, _, _ = run
    other = dataclasses.replace(tiny_config, seed=1)
    with pytest.raises(ValueError, match=f"run folder {run_dir} .*differing: .*settings"):
        reproduce.reproduce(other, simulate.resolve_survey(config=tiny_config), run_dir)


def test_load_results_needs_a_report(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no reproduction results in {tmp_path}"):
        reproduce.load_results(tmp_path)
    shipped = reproduce.shipped_dir()
    assert shipped.parts[-3:] == ("stellar_nb", "resources", "reproduction")
    if (shipped / "report.json").is_file():
        assert {"table1", "table5"} <= set(reproduce.load_results())
    else:
        with pytest.raises(FileNotFoundError, match="resources/reproduction"):
            reproduce.load_results()


def test_time_left_is_epochs_times_the_measured_epoch(tiny_config):
    assert list(reproduce.EPOCH_COST) == list(comparison.NETWORKS)
    full = config.get_config(data_home=tiny_config.data_home)
    names = reproduce.stage_names()
    assert reproduce.estimate_seconds_left(names, full, None) is None
    epochs = 100 * 10 + 30 + 30 * sum(reproduce.EPOCH_COST.values())
    assert reproduce.estimate_seconds_left(names, full, 1.25) == pytest.approx(1.25 * epochs)
    assert reproduce.estimate_seconds_left(names[-2:], full, 1.25) == 0  # linear, report
    with_start_up = reproduce.estimate_seconds_left(names, full, 1.25, start_up=10.0)
    assert with_start_up == pytest.approx(1.25 * epochs + 10.0 * (100 + 1 + 6))
    with pytest.raises(ValueError, match="unknown network"):
        reproduce.reproduce(full, networks=["transformer"])


def test_numbers_are_formatted_for_reading():
    assert reproduce.format_number(542771.0) == "542,771"
    assert reproduce.format_number(59.7612) == "59.76"
    assert reproduce.format_number(1234.56) == "1235"
    assert reproduce.format_number(0.000123456) == "0.0001235"


def test_paper_tables_keep_the_texts_numbers_only():
    assert paper.table(2).loc["residual MLP (paper)", "mae_logg"] == 0.130
    assert paper.table(3).loc["DNN (Li et al. 2017)", "parameters"] == 13_700_000
    assert paper.table(3)["inference_s"].isna().all()
    assert paper.table(5).loc["residual MLP (paper)"].eq(1.0).all()
    assert list(paper.table(1).index) == ["train", "validation", "test"]
    with pytest.raises(ValueError, match="Tables 1 to 5"):
        paper.table(6)


def test_command_prints_the_tables_and_refuses_another_runs_folder(
    run, tiny_config, monkeypatch, capsys
):
    run_dir, _, _ = run
    survey = str(simulate.resolve_survey(config=tiny_config))
    home = ["--data-home", str(tiny_config.data_home), "--survey", survey]
    with pytest.raises(SystemExit) as stop:
        commands.main(["reproduce", "--help"])
    assert stop.value.code == 0
    assert {"--out", "--overwrite", "--trials", "--quick"} <= set(capsys.readouterr().out.split())
    # the tiny run's split sizes are not quick mode's: the command refuses its folder
    code = commands.main(["reproduce", "--quick", *home, "--out", str(run_dir), "--no-progress"])
    assert code == 1 and f"run folder {run_dir}" in capsys.readouterr().err
    given = {}

    def finished(config, survey, out, **options):
        given.update(options, config=config, out=out)
        return run_dir

    monkeypatch.setattr(reproduce, "reproduce", finished)
    argv = ["reproduce", "--quick", "--trials", "2", "--survey", survey, "--out", str(run_dir)]
    assert commands.main(argv) == 0
    out = capsys.readouterr().out
    assert given["config"].trials == 2 and given["out"] == str(run_dir)
    expected = f"stellar-nb reproduce --quick --seed 0 --survey {survey} --out {run_dir} --trials 2"
    assert given["command"] == expected
    assert reproduce.TABLES["table3"] in out and "DNN (Li et al. 2017)" in out
    assert f"report: {run_dir / 'report.html'}" in out
    assert isinstance(reproduce.load_results(run_dir)["table2"], pd.DataFrame)
