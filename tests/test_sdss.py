"""Tests of stellar_nb.data.sdss: the real client against SkyServer/SAS stand-ins on loopback."""

import re
import shutil

import loopback
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits as astropy_fits

import stellar_nb
from stellar_nb import schema
from stellar_nb.data import download, fits, sdss, skyserver, spec_lite, splits, tables

SQL_PATH = "/dr12/SkyserverWS/SearchTools/SqlSearch"


@pytest.fixture
def site(tmp_path):
    return loopback.synthetic_site(tmp_path / "site", n=12, seed=3)


def served(site, catalogue=None, **kwargs):
    return loopback.LoopbackServer(
        site.root, catalogue=site.catalogue if catalogue is None else catalogue, **kwargs
    )


def catalogue_rows(site):
    """The site's catalogue as query_sspp returns it (schema names)."""
    return sdss.clean_catalogue(
        site.catalogue.rename(columns=str.lower).rename(columns=sdss.COLUMNS)
    )


def test_build_query_has_the_quality_cuts():
    sql = sdss.build_query(500, after=123, min_snr=12)
    assert sql.startswith("SELECT TOP 500 s.specObjID")
    for cut in ("p.teffadop > -9999", "p.fehadop > -9999", "p.loggadop > -9999", "p.snr >= 12.0",
                "s.class = 'STAR'", "s.specObjID > 123", "ORDER BY s.specObjID"):  # fmt: skip
        assert cut in sql


def test_query_pages_by_specobjid(site):
    with served(site) as server:
        frame = sdss.query_sspp(12, base_url=server.skyserver_url, page_size=5)
        sql_requests = [path for path, _ in server.requests if path == SQL_PATH]
    assert len(sql_requests) == 3  # 5 + 5 + 2
    assert (
        len(frame) == 12 and frame["spec_id"].is_unique and frame["spec_id"].is_monotonic_increasing
    )
    assert frame["spec_id"].dtype == np.int64
    expected = site.catalogue.set_index("specObjID")
    row = frame.iloc[7]
    assert row["catalog_teff"] == pytest.approx(expected.loc[row["spec_id"], "teffadop"])
    assert row["rv_adop"] == pytest.approx(expected.loc[row["spec_id"], "elodiervfinal"])
    assert row["rv_adop_unc"] == pytest.approx(expected.loc[row["spec_id"], "elodiervfinalerr"])
    assert (row["plate"], row["fiber"], row["objclass"]) == (
        expected.loc[row["spec_id"], "plate"],
        expected.loc[row["spec_id"], "fiberID"],
        "STAR",
    )
    assert set(schema.SCALAR_COLUMNS) <= set(frame.columns)
    assert set(schema.CATALOG_COLUMNS) | set(schema.UNCERTAINTY_COLUMNS) <= set(frame.columns)


def test_query_stops_at_n(site):
    with served(site) as server:
        frame = sdss.query_sspp(7, base_url=server.skyserver_url, page_size=5)
        assert sum(path == SQL_PATH for path, _ in server.requests) == 2
    assert len(frame) == 7


def test_query_applies_missing_label_and_snr_cuts(site):
    catalogue = site.catalogue.copy()
    catalogue.loc[2, "teffadop"] = -9999.0
    catalogue.loc[4, "loggadop"] = -9999.0
    catalogue.loc[6, "snr"] = 5.0
    with served(site, catalogue) as server:
        frame = sdss.query_sspp(100, base_url=server.skyserver_url)
    assert len(frame) == 9
    assert not set(catalogue.loc[[2, 4, 6], "specObjID"]) & set(frame["spec_id"])


def test_query_base_url_from_environment(site, monkeypatch):
    with served(site) as server:
        monkeypatch.setenv("STELLAR_NB_SKYSERVER_URL", server.skyserver_url)
        assert len(sdss.query_sspp(3)) == 3


def test_clean_catalogue_drops_missing_labels_and_duplicates(site):
    frame = catalogue_rows(site)
    frame.loc[1, "catalog_feh"] = -9999.0
    frame.loc[2, "catalog_logg_unc"] = np.nan
    frame = pd.concat([frame, frame.iloc[[5, 6]]], ignore_index=True)
    with pytest.warns(UserWarning) as caught:
        cleaned = sdss.clean_catalogue(frame, source="cat.csv")
    messages = [str(w.message) for w in caught]
    assert any("cat.csv: dropped 2 row(s) with missing labels (-9999)" in m for m in messages)
    assert any(
        "cat.csv: dropped 2 duplicate spec_id" in m and str(frame.loc[5, "spec_id"]) in m
        for m in messages
    )
    assert len(cleaned) == 10 and cleaned["spec_id"].is_unique


def test_clean_catalogue_rejects_ids_beyond_int64(site):
    frame = catalogue_rows(site)
    frame["spec_id"] = frame["spec_id"].astype(object)
    frame.loc[0, "spec_id"] = str(2**64 - 5)
    with pytest.warns(UserWarning, match="out-of-int64 spec_id"):
        cleaned = sdss.clean_catalogue(frame)
    assert len(cleaned) == 11


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("500", "HTTP 500: injected HTTP 500"),
        ("html", "did not return a result table"),
        ("timeout", "Timeout"),
    ],
)
def test_query_errors_are_clear(site, fault, message):
    with served(site, slow_seconds=1.0) as server:
        server.fail(SQL_PATH, fault, times=10)
        with pytest.raises(sdss.SkyServerError, match=message):
            sdss.query_sspp(5, base_url=server.skyserver_url, retries=1, timeout=0.3)


def test_query_retries_a_transient_500(site):
    with served(site) as server:
        server.fail(SQL_PATH, "500", times=1)
        assert len(sdss.query_sspp(4, base_url=server.skyserver_url, retries=2)) == 4


def test_a_wrong_column_fails_with_the_servers_message_and_no_retry(site):
    """The loopback tables have the real DR12 columns: the old ``p.rvadop`` is rejected."""
    wrong = sdss.build_query(5).replace("p.elodiervfinal AS rv_adop", "p.rvadop")
    with served(site) as server:
        with pytest.raises(
            sdss.SkyServerError, match=r"HTTP 500.*Invalid column name 'rvadop'"
        ) as caught:
            skyserver.sql_search(wrong, base_url=server.skyserver_url, retries=3)
        sql_requests = [path for path, _ in server.requests if path == SQL_PATH]
    assert caught.value.permanent and len(sql_requests) == 1


def test_the_query_only_names_real_dr12_columns():
    import dr12_schema

    sql = sdss.build_query(5)
    tables = {"s": dr12_schema.SPECOBJALL_COLUMNS, "p": dr12_schema.SPP_PARAMS_COLUMNS}
    named = re.findall(r"\b([sp])\.(\w+)", sql)
    assert len(named) > 20
    for alias, column in named:
        assert column.lower() in {name.lower() for name in tables[alias]}, (alias, column)


def test_loopback_rejects_a_catalogue_column_dr12_lacks(site):
    with pytest.raises(ValueError, match=r"\['rvadop'\] are in neither DR12"):
        served(site, site.catalogue.assign(rvadop=1.0))


def test_critical_sspp_flags_are_dropped_and_counted(site):
    catalogue = site.catalogue.copy()
    catalogue.loc[[1, 4, 9], "flag"] = ["Dnnnn", "Vnnnn", "Nnnnn"]
    catalogue.loc[2, "flag"] = "nnBnn"  # cautionary only: kept
    with served(site, catalogue) as server:
        with pytest.warns(UserWarning, match="dropped 3 star.*SSPP FLAG"):
            frame = sdss.query_sspp(12, base_url=server.skyserver_url, page_size=5)
    assert frame.attrs["dropped_flag"] == 3 and len(frame) == 9
    assert set(frame["spec_id"]).isdisjoint(catalogue.loc[[1, 4, 9], "specObjID"])
    assert catalogue.loc[2, "specObjID"] in set(frame["spec_id"])
    assert sdss.reliable_flag(["nnnnn", "Dnnnn", "", "nNnnn"]).tolist() == [
        True,
        False,
        False,
        True,
    ]


def test_spectrum_path_sdss_and_boss_trees():
    assert sdss.spectrum_path({"plate": 266, "mjd": 51602, "fiber": 31, "run2d": "26"}) == (
        "sdss/spectro/redux/26/spectra/lite/0266/spec-0266-51602-0031.fits"
    )
    assert sdss.spectrum_path({"plate": 7339, "mjd": 56799, "fiber": 611, "run2d": "v5_7_0"}) == (
        "boss/spectro/redux/v5_7_0/spectra/lite/7339/spec-7339-56799-0611.fits"
    )


def test_download_spectra_cache_and_failures(site, tmp_path):
    frame = catalogue_rows(site)
    paths = [sdss.spectrum_path(row) for _, row in frame.iterrows()]
    with served(site) as server:
        server.fail(paths[0], "404", times=1)  # not retried
        server.fail(paths[1], "html", times=1)  # bad content: not retried
        server.fail(paths[2], "truncate", times=2)  # retried once
        report = sdss.download_spectra(
            frame,
            tmp_path / "spectra",
            base_url=server.sas_url,
            workers=4,
            retries=1,
            progress=False,
        )
        assert set(report.failed) == set(paths[:3])
        assert "HTTP 404" in report.failed[paths[0]]
        assert "is not a FITS file" in report.failed[paths[1]]
        assert "truncated" in report.failed[paths[2]]
        assert len(report.downloaded) == 9
        for path in paths[:3]:
            assert not (tmp_path / "spectra" / path).exists()
        assert not list((tmp_path / "spectra").rglob("*.part"))
        again = sdss.download_spectra(
            frame, tmp_path / "spectra", base_url=server.sas_url, progress=False
        )
    assert again.ok and len(again.cached) == 9 and len(again.downloaded) == 3


def write_bad(site, row, kind):
    path = site.root / sdss.spectrum_path(row)
    spectrum = fits.read_spectrum(path)
    if kind == "galaxy":
        spectrum.meta["objclass"] = "GALAXY"
    elif kind == "dead":
        spectrum.ivar[:] = 0
    elif kind == "nan":
        spectrum.flux[:5] = np.nan
    elif kind == "shuffled":
        spectrum.loglam[[10, 11]] = spectrum.loglam[[11, 10]]
    elif kind == "other":
        spectrum.meta["fiber"] = 999
    elif kind == "nocoadd":
        astropy_fits.HDUList([astropy_fits.PrimaryHDU(np.zeros(10))]).writeto(path, overwrite=True)
        return
    spec_lite.write_spectrum(path, spectrum)


def test_build_splits_rejects_bad_spectra_and_writes_schema(site, tmp_path):
    frame = catalogue_rows(site)
    kinds = ["galaxy", "dead", "nan", "shuffled", "other", "nocoadd"]
    for (_, row), kind in zip(frame.iloc[:6].iterrows(), kinds, strict=True):
        write_bad(site, row, kind)
    missing = frame.iloc[[6]].assign(fiber=640)  # never downloaded
    with served(site) as server:
        sdss.download_spectra(frame, tmp_path / "spectra", base_url=server.sas_url, progress=False)
    catalogue = pd.concat([frame, missing], ignore_index=True)
    catalogue.loc[12, "spec_id"] = 1  # distinct id for the missing file
    with pytest.warns(UserWarning, match="6 spectra rejected"):
        report = splits.build_splits(
            catalogue,
            tmp_path / "spectra",
            tmp_path / "survey",
            sizes=(5, 1, 1),
            seed=0,
            progress=False,
        )
    ids = frame["spec_id"].tolist()
    reasons = report.rejected
    assert "CLASS GALAXY" in reasons[ids[0]] and "not a star" in reasons[ids[0]]
    assert "no pixel has ivar > 0" in reasons[ids[1]]
    assert "loglam is not finite and strictly increasing" in reasons[ids[3]]
    assert "plate-mjd-fiber" in reasons[ids[4]] and "999" in reasons[ids[4]]
    assert "unsupported layout" in reasons[ids[5]]
    assert "not downloaded" in reasons[1] and "0640" in reasons[1]
    assert all(".fits" in reason for reason in reasons.values())
    assert "non-finite flux" in report.notes[ids[2]]
    assert report.counts == {"train": 5, "validation": 1, "test": 1}
    train = tables.read_split(tmp_path / "survey", "train")
    assert list(train.columns) == [
        *schema.SCALAR_COLUMNS,
        *schema.ARRAY_COLUMNS,
        *schema.CATALOG_COLUMNS,
        *schema.UNCERTAINTY_COLUMNS,
    ]
    assert train["spec_id"].dtype == np.int64
    kept = [*ids[2:3], *ids[6:]]
    parts = [
        set(tables.read_split(tmp_path / "survey", split, columns=["spec_id"])["spec_id"])
        for split in schema.SPLITS
    ]
    assert set().union(*parts) == set(kept) and sum(map(len, parts)) == 7
    first = train.iloc[0]
    source = fits.read_spectrum(
        site.root
        / sdss.spectrum_path(
            frame.set_index("spec_id").loc[first["spec_id"]].to_dict() | {"run2d": "26"}
        )
    )
    np.testing.assert_array_equal(first["flux"], source.flux)
    assert first["catalog_teff"] == pytest.approx(
        frame.set_index("spec_id").loc[first["spec_id"], "catalog_teff"]
    )


def test_build_splits_is_seeded_and_shrinks_sizes(site, tmp_path):
    frame = catalogue_rows(site)
    with served(site) as server:
        sdss.download_spectra(frame, tmp_path / "spectra", base_url=server.sas_url, progress=False)
    orders = []
    for seed, name in ((4, "a"), (4, "b"), (5, "c")):
        splits.build_splits(
            frame, tmp_path / "spectra", tmp_path / name, sizes=(6, 3, 3), seed=seed, progress=False
        )
        orders.append(
            tables.read_split(tmp_path / name, "train", columns=["spec_id"])["spec_id"].tolist()
        )
    assert orders[0] == orders[1] and orders[0] != orders[2]
    with pytest.warns(
        UserWarning,
        match=r"only 12 usable spectra for splits of \(30, 5, 15\); writing \(7, 1, 3\)",
    ):
        report = splits.build_splits(
            frame, tmp_path / "spectra", tmp_path / "d", sizes=(30, 5, 15), progress=False
        )
    assert report.counts == {"train": 7, "validation": 1, "test": 3}
    with pytest.raises(ValueError, match="three non-negative counts"):
        splits.build_splits(frame, tmp_path / "spectra", tmp_path / "e", sizes=(1, 2))


def test_real_sdss_files_through_the_client(sdss_fixtures, tmp_path):
    """A real SDSS star is kept and a real galaxy rejected, end to end over HTTP."""
    root = tmp_path / "site"
    rows = []
    for name, _objclass, teff in (
        ("spec-0266-51602-0031.fits", "STAR", 9000.0),
        ("spec-0266-51602-0013.fits", "GALAXY", 5000.0),
    ):
        spectrum = fits.read_spectrum(sdss_fixtures / name)
        meta = spectrum.meta
        row = {"specObjID": meta["specobjid"], "plate": meta["plate"], "mjd": meta["mjd"], "fiberID": meta["fiber"],
               "ra": meta["ra"], "dec": meta["dec"], "class": "STAR", "subClass": meta["subclass"], "z": meta["z"],
               "run2d": "26", "sciencePrimary": 1, "teffadop": teff, "teffadopunc": 90.0, "fehadop": -1.0,
               "fehadopunc": 0.1, "loggadop": 4.0, "loggadopunc": 0.2, "elodiervfinal": 10.0, "snr": 12.0}  # fmt: skip
        rows.append(row)
        target = root / sdss.spectrum_path(
            {"plate": meta["plate"], "mjd": meta["mjd"], "fiber": meta["fiber"], "run2d": "26"}
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sdss_fixtures / name, target)
    with loopback.LoopbackServer(root, catalogue=pd.DataFrame(rows)) as server:
        catalogue = sdss.query_sspp(10, base_url=server.skyserver_url)
        assert catalogue["spec_id"].tolist() == [299492975510054912, 299497923312379904]
        report = sdss.download_spectra(
            catalogue, tmp_path / "spectra", base_url=server.sas_url, progress=False
        )
    assert report.ok
    with pytest.warns(UserWarning, match="1 spectra rejected"):
        built = splits.build_splits(
            catalogue, tmp_path / "spectra", tmp_path / "survey", sizes=(1, 0, 0), progress=False
        )
    assert "CLASS GALAXY" in built.rejected[299492975510054912]
    train = tables.read_split(tmp_path / "survey", "train")
    assert train["spec_id"].tolist() == [299497923312379904] and len(train.loc[0, "flux"]) == 3842


def test_site_from_split_round_trip(site, tmp_path):
    """A split table served as DR12 comes back identical through query, download and build."""
    frame = catalogue_rows(site)
    with served(site) as server:
        sdss.download_spectra(frame, tmp_path / "spectra", base_url=server.sas_url, progress=False)
    splits.build_splits(
        frame, tmp_path / "spectra", tmp_path / "first", sizes=(12, 0, 0), progress=False
    )
    original = tables.read_split(tmp_path / "first", "train")
    mirror = loopback.site_from_split(original, tmp_path / "mirror")
    assert len(mirror.catalogue) == 12
    with loopback.LoopbackServer(mirror.root, catalogue=mirror.catalogue) as server:
        catalogue = sdss.query_sspp(12, base_url=server.skyserver_url, page_size=4)
        sdss.download_spectra(
            catalogue, tmp_path / "spectra2", base_url=server.sas_url, progress=False
        )
    splits.build_splits(
        catalogue,
        tmp_path / "spectra2",
        tmp_path / "second",
        sizes=(12, 0, 0),
        seed=0,
        progress=False,
    )
    again = tables.read_split(tmp_path / "second", "train")
    left = original.sort_values("spec_id").reset_index(drop=True)
    right = again.sort_values("spec_id").reset_index(drop=True)
    for column in (*schema.SCALAR_COLUMNS, *schema.CATALOG_COLUMNS, *schema.UNCERTAINTY_COLUMNS):
        np.testing.assert_allclose(
            left[column].to_numpy(float), right[column].to_numpy(float), rtol=1e-6
        )
    for index in range(12):
        np.testing.assert_array_equal(left.loc[index, "flux"], right.loc[index, "flux"])
    with pytest.raises(ValueError, match="share plate-mjd-fiber"):
        loopback.site_from_split(
            pd.concat([original.iloc[:1], original.iloc[:1]]), tmp_path / "dup"
        )
    with pytest.raises(ValueError, match="needs the split columns"):
        loopback.site_from_split(original.drop(columns=["rv_adop"]), tmp_path / "bad")


def test_loopback_json_answers_and_fault_names(site):
    import requests

    with served(site) as server:
        response = requests.get(
            server.skyserver_url,
            params={
                "cmd": "SELECT TOP 2 specObjID, plate FROM specObj ORDER BY specObjID",
                "format": "json",
            },
            timeout=10,
        )
        table = response.json()[0]
        assert table["TableName"] == "Table1" and [row["plate"] for row in table["Rows"]] == [
            266,
            266,
        ]
        assert requests.get(f"{server.url}/nothing/here.fits", timeout=10).status_code == 404
        with pytest.raises(ValueError, match="unknown fault 'teapot'"):
            server.fail("/x", "teapot")
    with pytest.raises(RuntimeError, match="not running"):
        server.url  # noqa: B018


@pytest.mark.network
def test_real_skyserver_and_sas(tmp_path):
    catalogue = sdss.query_sspp(3, page_size=3, timeout=120)
    assert len(catalogue) == 3 and (catalogue["catalog_teff"] > 3000).all()
    report = sdss.download_spectra(catalogue.iloc[:1], tmp_path, progress=False)
    assert report.ok
    spectrum = fits.read_spectrum(report.paths[0])
    assert spectrum.meta["plate"] == catalogue.loc[0, "plate"] and spectrum.is_star


@pytest.fixture
def waits(monkeypatch):
    """Record the client's back-off waits instead of sleeping."""
    recorded = []
    monkeypatch.setattr(skyserver, "_sleep", recorded.append)
    return recorded


def sql_count(server):
    return sum(path == SQL_PATH for path, _ in server.requests)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("404", r"rejected the query \(HTTP 404\): injected HTTP 404"),
        ("error_table", "reported an error: injected: Query timed out after 600 seconds"),
    ],
)
def test_permanent_errors_are_not_retried(site, waits, fault, message):
    with served(site) as server:
        server.fail(SQL_PATH, fault, times=5)
        with pytest.raises(sdss.SkyServerError, match=message) as caught:
            sdss.query_sspp(5, base_url=server.skyserver_url, retries=3)
        assert sql_count(server) == 1 and waits == [] and caught.value.permanent


def test_transient_errors_are_retried_with_bounded_backoff(site, waits):
    with served(site) as server:
        server.fail(SQL_PATH, "503", times=2)
        assert len(sdss.query_sspp(4, base_url=server.skyserver_url, retries=3)) == 4
        assert sql_count(server) == 3
        assert waits == [1.0, 2.0]
        server.fail(SQL_PATH, "503", times=10)
        with pytest.raises(
            sdss.SkyServerError, match="failed after 4 attempts: HTTP 503"
        ) as caught:
            skyserver.sql_search("SELECT 1", base_url=server.skyserver_url, retries=3, backoff=40)
        assert not caught.value.permanent
        assert waits[2:] == [40.0, skyserver.MAX_WAIT, skyserver.MAX_WAIT]


def test_429_honours_retry_after(site, waits):
    with served(site) as server:
        server.fail(SQL_PATH, "429", times=1)
        assert len(sdss.query_sspp(3, base_url=server.skyserver_url, retries=2)) == 3
        assert sql_count(server) == 2 and waits == [float(loopback.RETRY_AFTER_SECONDS)]


def test_read_timeout_is_not_retried(site, waits):
    with served(site, slow_seconds=1.0) as server:
        server.fail(SQL_PATH, "timeout", times=5)
        with pytest.raises(sdss.SkyServerError, match=r"timed out.*fewer rows per page"):
            sdss.query_sspp(5, base_url=server.skyserver_url, retries=3, timeout=0.3)
        assert sql_count(server) == 1 and waits == []
    assert skyserver.TIMEOUT[1] > 600  # the server's own query limit


def test_queries_carry_the_user_agent(site):
    with served(site) as server:
        sdss.query_sspp(3, base_url=server.skyserver_url)
    assert server.user_agents and set(server.user_agents) == {download.USER_AGENT}
    assert download.USER_AGENT.startswith(f"stellar_nb/{stellar_nb.__version__}")


def test_rate_limiter_allows_sixty_queries_a_minute():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = download.RateLimiter(60, 60.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(60):
        assert limiter.wait() == 0.0
        now[0] += 0.5  # 60 calls in the first 30 s
    assert slept == []
    assert limiter.wait() == pytest.approx(30.0)  # the 61st waits for the first to age out
    assert now[0] == pytest.approx(60.0)
    calls_in_window = [start for start in limiter._starts if now[0] - start < 60.0]
    assert len(calls_in_window) == 60
    with pytest.raises(ValueError, match="calls and period must be positive"):
        download.RateLimiter(0, 60.0)
    assert skyserver.LIMITER.calls == 60 and skyserver.LIMITER.period == 60.0


def test_sas_concurrency_is_bounded(site, tmp_path):
    with pytest.raises(ValueError, match="workers must be 1 to 8 for the SAS, got 9"):
        sdss.download_spectra(site.catalogue.iloc[:0], tmp_path, workers=9)
