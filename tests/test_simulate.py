import os
import subprocess
import sys
import time

import numpy as np
import pytest

from stellar_nb import commands, emulator, schema, simulate
from stellar_nb import files as simulate_files
from stellar_nb.data import fits, tables
from stellar_nb.simulate import observe


@pytest.fixture(scope="module")
def train(quick_survey):
    return tables.read_split(quick_survey, "train")


@pytest.fixture(scope="module")
def shipped():
    return emulator.load_emulator()


def test_quick_survey_has_the_configured_splits_and_schema(quick_survey, quick_config, train):
    assert simulate.is_complete(quick_survey, n=3000, seed=quick_config.seed)
    sizes = [len(tables.read_split(quick_survey, s, columns=["spec_id"])) for s in schema.SPLITS]
    assert sizes == [1800, 300, 900]
    expected = (*schema.SCALAR_COLUMNS, *schema.ARRAY_COLUMNS, *schema.CATALOG_COLUMNS)
    assert set(expected + schema.UNCERTAINTY_COLUMNS + schema.TRUE_COLUMNS) == set(train.columns)
    ids = np.concatenate(
        [tables.read_split(quick_survey, s, columns=["spec_id"])["spec_id"] for s in schema.SPLITS]
    )
    assert len(np.unique(ids)) == 3000
    row = train.iloc[0]
    assert row["flux"].dtype == np.float32 and row["mask"].dtype == np.int32
    assert len(row["flux"]) == len(row["loglam"]) == len(row["ivar"]) == len(row["mask"])


def test_default_survey_is_reused(quick_survey, quick_config, monkeypatch):
    monkeypatch.delenv("STELLAR_NB_SURVEY_DIR", raising=False)
    before = (quick_survey / "train.parquet").stat().st_mtime_ns
    assert simulate.resolve_survey(config=quick_config) == quick_survey
    assert (quick_survey / "train.parquet").stat().st_mtime_ns == before


def test_resolve_survey_explicit_then_environment(quick_config, monkeypatch, tmp_path):
    given, from_environment = tmp_path / "given", tmp_path / "environment"
    given.mkdir()
    from_environment.mkdir()
    monkeypatch.setenv("STELLAR_NB_SURVEY_DIR", str(from_environment))
    assert simulate.resolve_survey(config=quick_config) == from_environment
    assert simulate.resolve_survey(given, quick_config) == given
    assert simulate.resolve_survey(str(given)) == given
    with pytest.raises(FileNotFoundError, match="missing"):
        simulate.resolve_survey(tmp_path / "missing", quick_config)
    monkeypatch.setenv("STELLAR_NB_SURVEY_DIR", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="gone"):
        simulate.resolve_survey(config=quick_config)


def test_split_sizes_follow_the_paper():
    assert simulate.split_sizes(50_000) == (30_000, 5_000, 15_000)
    for bad in (-5, 0, 2, 3.5, True):
        with pytest.raises(ValueError, match="n must be an integer"):
            simulate.split_sizes(bad)


def test_labels_look_like_segue(train, shipped):
    teff, feh, logg = (train[f"true_{label}"].to_numpy() for label in schema.LABELS)
    assert teff.min() >= 4000 and teff.max() <= 9200 and logg.min() >= 0.2 and logg.max() <= 5.0
    assert feh.min() >= shipped.bounds["feh"][0] and feh.max() <= 0.7
    assert np.all(shipped.in_bounds(np.column_stack([teff, feh, logg])))
    dwarfs = np.mean(logg > 3.5)
    giants = np.mean((logg < 3.3) & (teff < 5600))
    assert 0.55 < dwarfs < 0.85 and 0.12 < giants < 0.35
    assert np.mean(feh < -2.0) > 0.03  # a metal-poor halo tail
    assert np.mean(teff > 7000) > 0.04  # BHB and A stars
    # giants: metal-poor ones are hotter at the same gravity
    rgb = (logg > 1.5) & (logg < 2.5) & (teff < 5600)
    assert np.corrcoef(teff[rgb], feh[rgb])[0, 1] < -0.2


def test_catalogue_errors_are_consistent_with_their_uncertainties(train):
    for label in schema.LABELS:
        pull = (train[f"catalog_{label}"] - train[f"true_{label}"]) / train[f"catalog_{label}_unc"]
        assert abs(pull.mean()) < 0.1 and 0.9 < pull.std() < 1.1
    low, high = train["snr"] < 15, train["snr"] > 50
    assert (
        train.loc[low, "catalog_teff_unc"].mean() > 1.5 * train.loc[high, "catalog_teff_unc"].mean()
    )


def test_observing_effects(train):
    snr, rv = train["snr"].to_numpy(), train["rv_adop"].to_numpy()
    assert 9.0 < snr.min() and snr.max() < 125 and 18 < np.median(snr) < 35
    assert np.abs(rv).max() <= observe.MAX_RV and 40 < rv.std() < 110
    starts = np.array([row[0] for row in train["loglam"]])
    ends = np.array([row[-1] for row in train["loglam"]])
    assert starts.min() >= 3.5748 and ends.max() <= 3.9681
    short = (starts > schema.GRID_LOGLAM_MIN) | (ends < schema.GRID_LOGLAM_MAX)
    assert short.mean() > 0.8 and len(np.unique(starts)) > 1
    row = train.iloc[int(np.argmax(snr))]
    np.testing.assert_allclose(np.diff(row["loglam"].astype(float)), 1e-4, atol=2e-6)
    mean_flux = np.array([np.mean(f) for f in train["flux"]])
    assert 3 < mean_flux.min() and mean_flux.max() < 400
    masks = np.concatenate(list(train["mask"][:300]))
    ivars = np.concatenate(list(train["ivar"][:300]))
    assert np.any(masks & observe.BRIGHTSKY) and np.any(masks & observe.MANYBADCOLUMNS)
    assert np.all(ivars[(masks & observe.FULLREJECT) > 0] == 0)
    assert np.all(ivars[masks == 0] > 0)


def _observed(shipped, n=20, seed=3, **fixed):
    rng = np.random.default_rng(seed)
    labels = np.tile([[5800.0, -0.3, 4.3], [4800.0, -1.2, 2.5]], (n // 2, 1))
    star = {**observe.draw_observations(labels, rng), "labels": labels, **fixed}
    return star, observe.observe_spectra(shipped, star, rng)


def test_noise_matches_ivar_and_the_emulator_fits_the_data(shipped):
    # without the line-spread jitter the emulator at the true labels fits to within the noise
    star, pixels = _observed(shipped, lsf=np.zeros(20))
    chi2, count = 0.0, 0
    for i in range(20):
        rows = slice(pixels["offsets"][i], pixels["offsets"][i + 1])
        loglam, flux, ivar = pixels["loglam"][rows], pixels["flux"][rows], pixels["ivar"][rows]
        model = emulator.fit_to_observed(
            shipped, star["labels"][i], loglam, flux, ivar, star["rv"][i]
        )
        good = (ivar > 0) & (pixels["mask"][rows] == 0)
        # reddening and calibration are smooth, but not all of them degree-3 polynomials
        chi2 += np.sum((flux[good] - model[good]) ** 2 * ivar[good])
        count += good.sum()
    assert 0.95 < chi2 / count < 1.1


def test_reddening_and_calibration_are_smooth_distortions(shipped):
    rng = np.random.default_rng(0)
    star = observe.draw_observations(np.tile([5800.0, -0.3, 4.3], (4000, 1)), rng)
    assert 0.04 < np.mean(star["ebv"]) < 0.06 and star["ebv"].max() <= observe.MAX_REDDENING
    assert np.median(np.abs(star["calibration"][:, 0])) == pytest.approx(
        0.727 * observe.CALIBRATION_SIGMA[0], rel=0.1
    )  # the median |t_5| is 0.727
    assert 0 <= star["lsf"].min() and star["lsf"].max() <= observe.MAX_LSF_BROADENING
    curve = observe.reddening_curve(np.log10([4400.0, 5500.0, 8000.0]))
    # E(B-V) = 1 is A_B - A_V = 1 mag: ln T(B) - ln T(V) = -0.4 ln 10
    assert curve[0] - curve[1] == pytest.approx(-0.921, abs=0.1)
    assert curve[2] > curve[1] > curve[0]


def test_broaden_keeps_flux_and_fills_lines():
    spectra = np.ones((3, 200), dtype=np.float32)
    spectra[:, 100] = 0.0
    broadened = observe.broaden(spectra, np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(broadened[0], spectra[0])
    np.testing.assert_allclose(broadened.sum(axis=1), spectra.sum(axis=1), rtol=1e-5)
    assert broadened[0, 100] < broadened[1, 100] < broadened[2, 100] < 1.0


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    paths = [
        simulate.simulate_survey(300, seed, tmp_path / f"run{i}")
        for i, seed in enumerate((7, 7, 8))
    ]
    for split in schema.SPLITS:
        first, second, other = ((p / f"{split}.parquet").read_bytes() for p in paths)
        assert first == second and first != other


def test_bad_arguments_write_nothing(tmp_path, shipped):
    with pytest.raises(ValueError, match="n must be"):
        simulate.simulate_survey(-10, 0, tmp_path / "negative")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        simulate.simulate_survey(30, 0, tmp_path / "missing" / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        simulate.simulate_survey(30, 0, tmp_path / "file" / "out")
    with pytest.raises(ValueError, match="outside the emulator's bounds"):
        simulate.simulate_survey(30, 0, tmp_path / "hot", label_ranges={"teff": (4000, 30000)})
    with pytest.raises(ValueError, match="unknown label"):
        simulate.simulate_survey(30, 0, tmp_path / "vmic", label_ranges={"vmic": (1, 2)})
    with pytest.raises(ValueError, match="n_fits"):
        simulate.simulate_survey(30, 0, tmp_path / "fits", n_fits=100)
    with pytest.raises(ValueError, match="unknown split"):
        simulate.crb_summary(tmp_path, split="training")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(PermissionError, match="not writable"):
        simulate.simulate_survey(30, 0, locked / "out")


def test_failure_midway_leaves_nothing_partial(tmp_path, monkeypatch):
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return original(*args)

    original = observe.observe_spectra
    monkeypatch.setattr(observe, "observe_spectra", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate.simulate_survey(3000, 0, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_narrow_label_ranges(tmp_path):
    out = simulate.simulate_survey(60, 1, tmp_path / "giants", label_ranges={"logg": (0.5, 3.0)})
    frame = tables.read_split(out, "train", columns=list(schema.TRUE_COLUMNS))
    assert frame["true_logg"].between(0.5, 3.0).all()


def test_fits_files_round_trip(tmp_path):
    out = simulate.simulate_survey(100, 2, tmp_path / "survey", n_fits=3)
    files = sorted((out / "fits").glob("spec-*.fits"))
    assert len(files) == 3
    test = tables.read_split(out, "test", rows=slice(0, 3))
    names = {f"spec-{r.plate:04d}-{r.mjd:05d}-{r.fiber:04d}.fits": r for r in test.itertuples()}
    for path in files:
        spectrum = fits.read_spectrum(path)
        row = names[path.name]
        np.testing.assert_array_equal(spectrum.flux, row.flux)
        np.testing.assert_array_equal(spectrum.and_mask, row.mask)
        np.testing.assert_allclose(spectrum.loglam, row.loglam, atol=1e-6)
        assert spectrum.meta["plate"] == row.plate and spectrum.is_star


def test_crb_summary_falls_with_snr(quick_survey, shipped):
    summary = simulate.crb_summary(
        quick_survey, per_bin=8, bins=(10, 20, 40, 125), emulator=shipped
    )
    assert list(summary["n"]) == [8, 8, 8]
    for label in schema.LABELS:
        values = summary[f"crb_{label}"].to_numpy()
        assert np.all(np.diff(values) < 0) and np.all(values > 0)
    assert 5 < summary["crb_teff"].iloc[0] < 150


def test_cli_simulate_reports_the_crb(tmp_path, capsys):
    assert (
        commands.main(["simulate", "--n", "200", "--out", str(tmp_path / "s"), "--seed", "4"]) == 0
    )
    out = capsys.readouterr().out
    assert "wrote 200 spectra (120 train, 20 validation, 60 test)" in out
    assert "crb_teff" in out and simulate.is_complete(tmp_path / "s", n=200, seed=4)
    assert commands.main(["simulate", "--n", "-3", "--out", str(tmp_path / "bad")]) == 1
    assert "n must be an integer" in capsys.readouterr().err
    assert (
        commands.main(
            ["simulate", "--n", "30", "--out", str(tmp_path / "hot"), "--teff", "3000", "9000"]
        )
        == 1
    )
    assert "outside the emulator" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "hot").exists()


def test_bench_simulate_reports_time_memory_and_disk(tmp_path, capsys):
    from stellar_nb.bench import simulate as bench_simulate

    figures = bench_simulate.measure(300, seed=1, out=tmp_path / "bench")
    assert figures["seconds"] > 0 and figures["wall_seconds"] > figures["seconds"]
    assert 50 < figures["peak_rss_mb"] < 4000
    on_disk = sum(p.stat().st_size for p in (tmp_path / "bench").rglob("*") if p.is_file())
    assert figures["disk_mb"] == pytest.approx(on_disk / 1e6)
    assert 4 < figures["bytes_per_pixel"] < 16  # float32 flux + ivar dominate, compressed
    assert commands.main(["bench", "simulate", "--n", "100"]) == 0
    out = capsys.readouterr().out
    assert "simulated survey of 100 spectra" in out and "peak memory" in out


def test_survey_figures(quick_survey, train, shipped):
    from stellar_nb.plots import survey as survey_plots

    frames = {
        s: tables.read_split(quick_survey, s, columns=list(schema.CATALOG_COLUMNS))
        for s in schema.SPLITS
    }
    figure = survey_plots.plot_label_distributions(frames)
    assert len(figure.data) == 9 and {trace.name for trace in figure.data} == set(schema.SPLITS)
    assert len(figure.data[0].x) == 1800

    row = train.iloc[0]
    figure = survey_plots.plot_observed_spectrum(
        row.loglam, row.flux, row.ivar, row.mask, model=row.flux
    )
    names = [trace.name for trace in figure.data]
    assert names == ["1-sigma noise", "flux", "model", "and_mask set"]
    assert len(figure.data[3].x) == int(np.count_nonzero(row.mask))
    np.testing.assert_allclose(figure.data[1].x, 10 ** row.loglam.astype(float))

    summary = simulate.crb_summary(quick_survey, per_bin=3, bins=(10, 20, 125), emulator=shipped)
    figure = survey_plots.plot_crb(summary)
    assert len(figure.data) == 3 and figure.layout.xaxis.type == "log"
    np.testing.assert_allclose(figure.data[0].y, summary["crb_teff"])

    labels = np.array([[5777.0, 0.0, 4.44], [4500.0, -1.0, 2.0]])
    flux = shipped.flux(labels)
    figure = survey_plots.plot_library_comparison(shipped.loglam, flux, flux, labels, ["a", "b"])
    assert len(figure.data) == 4 and "Teff 5777 K" in figure.layout.annotations[0].text
    np.testing.assert_allclose(np.mean(figure.data[0].y), 1.0, rtol=1e-5)

    report = {
        "loglam": shipped.loglam[:10],
        "per_pixel_rms": np.full(10, 0.02),
        "per_pixel_median_abs": np.full(10, 0.01),
        "median_rms": 0.0226,
    }
    figure = survey_plots.plot_realism(report)
    assert "2.26 %" in figure.layout.title.text
    np.testing.assert_allclose(figure.data[0].y, 2.0)


@pytest.mark.slow
def test_cli_validates_and_refits_the_emulator(tmp_path, capsys):
    plot = tmp_path / "realism.html"
    assert commands.main(["simulate", "--validate-emulator", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "held-out realism (chosen degree 4)" in out and "(goal <= 3 %)" in out
    figure = float(out.split("3800-7400 A: ")[1].split(" %")[0])
    assert 1.0 < figure <= 3.0
    assert plot.stat().st_size > 100_000
    refit = tmp_path / "emulator.npz"
    assert commands.main(["simulate", "--refit-emulator", "--emulator", str(refit)]) == 0
    sun = [[5777.0, 0.0, 4.44]]
    np.testing.assert_allclose(
        emulator.load_emulator(refit).flux(sun), emulator.load_emulator().flux(sun), rtol=1e-4
    )


def test_killed_run_leaves_staging_that_the_next_run_removes(tmp_path, monkeypatch):
    out = tmp_path / "survey"
    script = f"from stellar_nb import simulate; simulate.simulate_survey(3000, 0, {str(out)!r})"
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    try:
        # the file exists before its first row group is written: wait for bytes, not for the name
        while not any(f.stat().st_size for f in tmp_path.glob(".survey.*.part/train.parquet")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    (killed,) = tmp_path.glob(".survey.*.part")
    assert (killed / "train.parquet").stat().st_size > 0
    old = tmp_path / ".survey.old"  # an earlier run killed between its two renames
    old.mkdir()
    (old / "survey.json").write_text("{}")
    time.sleep(0.05)
    this_process_started = time.time()  # after the killed run, as a next command's would be
    monkeypatch.setattr(simulate_files, "process_start_time", lambda: this_process_started)
    time.sleep(0.05)
    live = tmp_path / ".survey.l1ve00.part"  # a run that started later, still writing
    live.mkdir()
    previous_umask = os.umask(0o022)
    try:
        simulate.simulate_survey(30, 0, out)
    finally:
        os.umask(previous_umask)
    assert not killed.exists() and not old.exists() and live.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "survey"]
    assert simulate.is_complete(out, n=30, seed=0)
    assert out.stat().st_mode & 0o777 == 0o755
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_survey_folder_modes_follow_the_umask(tmp_path):
    previous_umask = os.umask(0o027)
    try:
        out = simulate.simulate_survey(30, 0, tmp_path / "survey", n_fits=1)
    finally:
        os.umask(previous_umask)
    assert out.stat().st_mode & 0o777 == 0o750
    assert (out / "fits").stat().st_mode & 0o777 == 0o750
    for path in [*out.glob("*.*"), *(out / "fits").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o640, path
