import dataclasses

import pytest

from stellar_nb import config


def test_quick_mode_shrinks_and_full_mode_matches_paper(tmp_path):
    full = config.get_config(quick=False, data_home=tmp_path)
    quick = config.get_config(quick=True, data_home=tmp_path)
    assert (full.n_train, full.n_validation, full.n_test) == (30_000, 5_000, 15_000)
    assert (full.epochs, full.batch_size, full.trials) == (30, 256, 100)
    assert quick.n_total < full.n_total / 10 and quick.epochs < full.epochs
    assert quick.survey_dir != full.survey_dir
    assert full.survey_dir.is_relative_to(tmp_path)


def test_environment_selects_quick_mode_and_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("STELLAR_NB_QUICK", "1")
    monkeypatch.setenv("STELLAR_NB_DATA", str(tmp_path / "home"))
    settings = config.get_config()
    assert settings.quick
    assert settings.data_home == tmp_path / "home" and settings.data_home.is_dir()
    monkeypatch.setenv("STELLAR_NB_QUICK", "0")
    assert not config.get_config().quick


def test_config_is_frozen_and_rejects_bad_fields(tmp_path):
    settings = config.get_config(data_home=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 3
    with pytest.raises(TypeError, match="unknown configuration field"):
        config.get_config(data_home=tmp_path, epoch=3)
    with pytest.raises(ValueError, match="n_train must be positive"):
        config.get_config(data_home=tmp_path, n_train=0)


@pytest.mark.parametrize(
    ("name", "variable", "default"),
    [
        (
            "skyserver",
            "STELLAR_NB_SKYSERVER_URL",
            "https://skyserver.sdss.org/dr12/SkyserverWS/SearchTools/SqlSearch",
        ),
        ("sas", "STELLAR_NB_SAS_URL", "https://data.sdss.org/sas/dr12"),
        ("huggingface", "STELLAR_NB_HF_URL", "https://huggingface.co"),
    ],
)
def test_service_url_explicit_then_environment_then_default(monkeypatch, name, variable, default):
    monkeypatch.delenv(variable, raising=False)
    assert config.service_url(name) == default
    monkeypatch.setenv(variable, "http://127.0.0.1:9/env")
    assert config.service_url(name) == "http://127.0.0.1:9/env"
    assert config.service_url(name, "http://127.0.0.1:9/given") == "http://127.0.0.1:9/given"
    with pytest.raises(ValueError, match="unknown service 'ftp'"):
        config.service_url("ftp")


def test_model_dir_explicit_then_environment_then_pretrained(monkeypatch, tmp_path):
    monkeypatch.delenv("STELLAR_NB_MODEL_DIR", raising=False)
    assert config.model_dir() is None
    monkeypatch.setenv("STELLAR_NB_MODEL_DIR", str(tmp_path / "env"))
    assert config.model_dir() == tmp_path / "env"
    assert config.model_dir(tmp_path / "given") == tmp_path / "given"
    assert config.model_dir(str(tmp_path / "given")) == tmp_path / "given"


def test_data_home_folders_are_config_properties(tmp_path):
    settings = config.get_config(quick=True, data_home=tmp_path)
    assert settings.preprocessed_dir == tmp_path / "preprocessed"
    assert settings.downloads_dir == tmp_path / "sdss_dr12"
    assert settings.paper_dataset_dir == tmp_path / "benchmark"
    assert settings.dashboard_cache_dir == tmp_path / "dashboard"
    assert settings.survey_dir == tmp_path / "simulated" / "survey-quick-seed0"
    assert settings.reproduction_dir == tmp_path / "reproduction" / "quick-seed0"
    assert config.get_config(data_home=tmp_path, seed=2).reproduction_dir.name == "full-seed2"


@pytest.mark.parametrize(("installed", "expected"), [(True, "jax"), (False, "tensorflow")])
def test_keras_backend_is_jax_where_installed_else_tensorflow(monkeypatch, installed, expected):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    looked_up = []

    def find_spec(name):
        looked_up.append(name)
        return object() if installed else None

    monkeypatch.setattr(config.importlib.util, "find_spec", find_spec)
    assert config.keras_backend() == expected
    assert looked_up == ["jax"]
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert config.keras_backend() == "torch"


def test_use_keras_backend_sets_the_variable_only_before_keras_is_imported(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "")  # recorded, so the value set below is undone
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.delitem(config.sys.modules, "keras", raising=False)
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    assert config.use_keras_backend() == "tensorflow"
    assert config.os.environ["KERAS_BACKEND"] == "tensorflow"

    class Imported:
        class backend:
            @staticmethod
            def backend():
                return "jax"

    monkeypatch.setitem(config.sys.modules, "keras", Imported)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert config.use_keras_backend() == "jax"  # what Keras really uses, not the variable
