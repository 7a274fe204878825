"""Settings: environment first, then settings.toml, then defaults; bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import ConfigurationError, Settings

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_settings_file_is_valid_and_documents_every_key() -> None:
    loaded = Settings.load(REPO / "settings.toml", environ={})
    text = (REPO / "settings.toml").read_text()
    for section, values in loaded.model_dump().items():
        for key, value in values.items():
            if isinstance(value, dict) and key in ("permissions", "ui", "masks"):
                assert f"[{section}.{key}]" in text
                for inner in value:
                    assert f"{inner} =" in text, f"{section}.{key}.{inner} is not documented"
            else:
                assert f"{key} =" in text, f"{section}.{key} is not documented in settings.toml"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[database]\nurl = "sqlite:///from-file.db"\n[audit]\nbatch_size = 10\n')
    settings = Settings.load(
        path,
        environ={
            "DMR_DATABASE_URL": "postgresql+psycopg://db/x",
            "DMR_AUDIT__BATCH_SIZE": "500",
            "DMR_MODELS__PERMISSIONS__DEFAULT_USER_PERMISSIONS": '["read"]',
            "DMR_BROKER_URL": "amqp://guest:guest@localhost//",
            "UNRELATED": "1",
        },
    )
    assert settings.database.url == "postgresql+psycopg://db/x"
    assert settings.audit.batch_size == 500
    assert settings.models.permissions.default_user_permissions == ["read"]
    assert settings.celery.broker_url == "amqp://guest:guest@localhost//"


def test_missing_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.load(environ={}) == Settings()


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"DMR_MODELS__DEFAULT_PAGE_SIZE": "0"}, "models.default_page_size"),
        # Past a century the cleanup's cutoff date overflows: refused at start, not hourly.
        ({"DMR_MODELS__IMPORT_RETENTION_DAYS": "36501"}, "models.import_retention_days"),
        ({"DMR_MODELS__AUDIT_RETENTION_DAYS": "100000000"}, "models.audit_retention_days"),
        ({"DMR_AUDIT__CODEC": "lzma"}, "audit.codec"),
        ({"DMR_DATABASE__NO_SUCH_KEY": "1"}, "database.no_such_key"),
        ({"DMR_MODELS__PERMISSIONS__DEFAULT_USER_PERMISSIONS": '["fly"]'}, "models.permissions"),
    ],
)
def test_a_bad_value_names_its_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")) as caught:
        Settings.load(REPO / "settings.toml", environ=environ)
    assert caught.value.details["key"].startswith(key)


def test_a_broken_file_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "settings.toml"
    broken.write_text("[models\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        Settings.load(broken, environ={})
    with pytest.raises(ConfigurationError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml", environ={})


def test_with_overrides_validates() -> None:
    assert Settings().with_overrides(models={"max_page_size": 7}).models.max_page_size == 7
    with pytest.raises(ConfigurationError, match="models.max_page_size"):
        Settings().with_overrides(models={"max_page_size": -1})


def test_a_short_name_wins_over_its_long_form_whatever_the_order() -> None:
    for environ in (
        {"DMR_BROKER_URL": "amqp://short//", "DMR_CELERY__BROKER_URL": "amqp://long//"},
        {"DMR_CELERY__BROKER_URL": "amqp://long//", "DMR_BROKER_URL": "amqp://short//"},
    ):
        assert Settings.load(REPO / "settings.toml", environ=environ).celery.broker_url == (
            "amqp://short//"
        )
