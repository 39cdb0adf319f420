"""Tests of stellar_nb.predict: the ``stellar-nb predict`` command on FITS files and split tables."""

import numpy as np
import pandas as pd
import pytest
from test_train import quick_model

from stellar_nb import commands, inference, predict, trust


@pytest.fixture(scope="module")
def model_dir(quick_config, quick_survey):
    return quick_model(quick_config, quick_survey)


def test_predict_a_split_table(model_dir, quick_survey, tmp_path, capsys):
    out = tmp_path / "table.csv"
    status = commands.main(
        ["predict", str(model_dir), str(quick_survey / "validation.parquet"), "--out", str(out)]
    )
    assert status == 0
    table = pd.read_csv(out)
    assert len(table) == 300 and list(table.columns[:2]) == ["source", "spec_id"]
    flag_columns = [trust.column_name(name) for name in trust.FLAG_NAMES[:-1]]
    assert set(flag_columns) <= set(table.columns)
    # "flag" names exactly the raised flag columns; simulated stars are nearly all trusted
    raised = table[flag_columns].any(axis=1)
    assert (table["flag"].notna() == raised).all()
    assert raised.mean() < 0.15
    assert not table["flag_not_a_star"].any() and not table["flag_non_fgk_subclass"].any()
    # the same numbers as preprocessing and predicting directly
    numpy_model = inference.NumpyModel.load(model_dir)
    direct, _ = predict.predict_files(numpy_model, [quick_survey / "validation.parquet"])
    np.testing.assert_allclose(
        table[["teff", "feh", "logg"]].to_numpy(),
        direct[["teff", "feh", "logg"]].to_numpy(),
        rtol=1e-6,
    )
    errors = np.abs(table["teff"] - table["true_teff"])
    assert errors.median() < 1000  # a quick model, but a trained one
    flagged = int(raised.sum())
    assert (
        f"300 spectra (300 stars, 0 unusable, {flagged} with a trust flag)"
        in capsys.readouterr().out
    )


def test_predict_fits_files_flags_non_stars_and_skips_bad_files(
    model_dir, sdss_fixtures, tmp_path, capsys
):
    bad = tmp_path / "not-a-spectrum.fits"
    bad.write_bytes(b"SIMPLE  = nonsense" * 10)
    files = sorted(str(path) for path in sdss_fixtures.glob("*.fit*"))
    out = tmp_path / "fits.csv"
    status = commands.main(
        [
            "predict",
            str(model_dir),
            *files,
            str(bad),
            str(tmp_path / "absent.fits"),
            "--out",
            str(out),
            "--uncertainty",
            "--draws",
            "4",
        ]
    )
    assert status == 1
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    failed = table["flag"] == "unreadable"
    assert len(table) == len(files) + 2 and failed.sum() == 2
    assert table.loc[failed, "reason"].str.startswith(tuple(map(str, (bad, tmp_path)))).all()
    assert table.loc[failed, "teff"].isna().all()
    table = table[~failed]
    stars = table["objclass"] == "STAR"
    assert stars.any() and (~stars).any()
    assert table.loc[~stars, "flag"].str.contains("not a star").all()
    assert table.loc[~stars, "flag_not_a_star"].all()
    # galaxies and quasars: their redshift is no stellar radial velocity, so nothing is predicted
    assert table.loc[~stars, "teff"].isna().all()
    assert np.isfinite(table.loc[stars, ["teff", "feh", "logg"]].to_numpy()).all()
    # the hot white dwarf (SUBCLASS WDhotter) is a star the model was never shown: flagged
    dwarf = table["spec_id"] == "spec-0266-51602-0031.fits"
    assert table.loc[dwarf, "flag_non_fgk_subclass"].all()
    assert table.loc[dwarf, "flag"].str.contains("non-FGK subclass").all()
    assert (table.loc[stars, ["sigma_teff", "sigma_feh", "sigma_logg"]] > 0).all().all()
    err = capsys.readouterr().err
    assert f"skipped {bad}" in err and "absent.fits: no such file" in err and "2 of" in err


def test_predict_reports_a_bad_model_directory(tmp_path, capsys):
    status = commands.main(
        ["predict", str(tmp_path / "nowhere"), "x.fits", "--out", str(tmp_path / "t.csv")]
    )
    assert status == 1
    assert "nowhere does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["", ".", "DIR", "INPUT", "missing/t.csv"])
def test_predict_refuses_a_bad_out_before_any_work(out, sdss_fixtures, tmp_path, capsys):
    spectrum = tmp_path / "star.fits"
    spectrum.write_bytes((sdss_fixtures / "spec-0266-51602-0031.fits").read_bytes())
    before = spectrum.read_bytes()
    out = {"DIR": str(tmp_path), "INPUT": str(spectrum)}.get(out, out)
    if out == "missing/t.csv":
        out = str(tmp_path / out)
    # the model directory does not exist: the --out check must come first to be reported
    status = commands.main(["predict", str(tmp_path / "nowhere"), str(spectrum), "--out", out])
    assert status == 1
    err = capsys.readouterr().err
    assert "--out" in err and "nowhere" not in err
    assert spectrum.read_bytes() == before


def test_predict_keeps_an_existing_out_when_every_input_fails(tmp_path, capsys):
    out = tmp_path / "results.csv"
    out.write_text("source,teff\nold,5000\n")
    out.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a spectrum")
    status = commands.main(["predict", "pretrained", str(bad), "--out", str(link)])
    assert status == 1
    assert out.read_text() == "source,teff\nold,5000\n" and link.is_symlink()
    assert "left as it was" in capsys.readouterr().err


def test_predict_writes_through_a_symlink_keeping_the_mode(sdss_fixtures, tmp_path):
    out = tmp_path / "results.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    spectrum = str(sdss_fixtures / "spec-0266-51602-0031.fits")
    status = commands.main(["predict", "pretrained", spectrum, "--out", str(link)])
    assert status == 0 and link.is_symlink()
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 1 and table.loc[0, "reason"] == ""
    assert {trust.column_name(name) for name in trust.TABLE_FLAG_NAMES} <= set(table.columns)
    assert out.stat().st_mode & 0o777 == 0o640
