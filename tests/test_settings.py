"""Settings a user can find: every setting read from RAMFER_<NAME> (the environment, .env, secrets files), the
names from before the prefix still read with a warning that names the new one (REDIS_URL without one), and
docs/configuration.md's table the one `python -m service settings` makes. No Redis, no model: milliseconds."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from service.settings import (
    ENV_PREFIX,
    MARKERS,
    NOT_SETTINGS,
    Settings,
    env_name,
    markdown_reference,
    with_reference,
)
from training.bundled import SYNTHETIC_8CLASS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No setting in the environment under either name, no .env where Settings look (the current folder is an
    empty one), and an empty secrets folder: each test gives what it reads."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(env_name(name), raising=False)
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    (tmp_path / "secrets").mkdir()
    monkeypatch.setenv("RAMFER_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def made(**kwargs) -> tuple[Settings, list[str]]:
    """Settings, and the old-name warnings their making gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = Settings(**kwargs)
    return settings, [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]


def test_every_setting_is_read_from_its_ramfer_name(env):
    env.setenv("RAMFER_MODEL_DIR", "synthetic")
    env.setenv("RAMFER_DETECT_EVERY", "3")
    env.setenv("RAMFER_API_KEYS", '["k1","k2"]')
    env.setenv("RAMFER_INFERENCE_BF16", "false")
    env.setenv("RAMFER_S3_SECRET_ACCESS_KEY", "s3cret")
    settings, warned = made()
    assert settings.model_dir == SYNTHETIC_8CLASS and settings.detect_every == 3 and settings.api_keys == ["k1", "k2"]
    assert settings.inference_bf16 is False and settings.s3_secret_access_key.get_secret_value() == "s3cret"
    assert warned == []
    assert all(env_name(name) == ENV_PREFIX + name.upper() for name in Settings.model_fields)


def test_an_old_name_still_works_with_a_warning_that_names_the_new_one(env, caplog):
    env.setenv("DETECT_EVERY", "3")
    env.setenv("API_KEYS", '["k1"]')
    with caplog.at_level(logging.WARNING, logger="service.settings"):
        settings, warned = made()
    assert settings.detect_every == 3 and settings.api_keys == ["k1"]
    assert sorted(warned) == [
        "API_KEYS (environment) is an old name: rename it RAMFER_API_KEYS (the old names will stop working)",
        "DETECT_EVERY (environment) is an old name: rename it RAMFER_DETECT_EVERY (the old names will stop working)",
    ]
    assert "rename it RAMFER_DETECT_EVERY" in caplog.text  # in the log too, where an operator sees it


def test_redis_url_is_an_accepted_alias_without_a_warning(env):
    env.setenv("REDIS_URL", "redis://old:6379/0")
    settings, warned = made()
    assert settings.redis_url == "redis://old:6379/0" and warned == []


def test_the_ramfer_name_wins_over_the_old_one(env):
    env.setenv("WORKERS", "3")
    env.setenv("RAMFER_WORKERS", "5")
    env.setenv("REDIS_URL", "redis://old:6379/0")
    env.setenv("RAMFER_REDIS_URL", "redis://new:6379/0")
    settings, warned = made()
    assert settings.workers == 5 and settings.redis_url == "redis://new:6379/0"
    assert warned == [
        "WORKERS (environment) is an old name and is ignored: RAMFER_WORKERS is set there too; remove WORKERS"
    ]


def test_keyword_arguments_win_over_the_environment(env):
    env.setenv("RAMFER_WORKERS", "5")
    env.setenv("LIVE_WORKERS", "4")
    settings, _ = made(workers=2, live_workers=0)
    assert settings.workers == 2 and settings.live_workers == 0


def test_a_dotenv_file_takes_the_ramfer_names_and_the_old_ones(env, tmp_path):
    (tmp_path / ".env").write_text(
        "RAMFER_BATCH_SIZE=9\nMAX_FACES=3\nREDIS_URL=redis://dotenv:6379/0\n"
        "REDIS_PASSWORD=compose-only\nRAMFER_HOST=api-host.example\n"
        "RAMFER_TRACK_GAP_S=2.5\nTRACK_GAP_S=9\n"
    )
    settings, warned = made()
    assert settings.batch_size == 9 and settings.max_faces == 3 and settings.redis_url == "redis://dotenv:6379/0"
    assert settings.track_gap_s == 2.5  # the RAMFER_ line wins
    assert sorted(warned) == [
        "MAX_FACES (in .env) is an old name: rename it RAMFER_MAX_FACES (the old names will stop working)",
        "TRACK_GAP_S (in .env) is an old name and is ignored: RAMFER_TRACK_GAP_S is set there too; remove TRACK_GAP_S",
    ]
    env.setenv("RAMFER_BATCH_SIZE", "4")
    env.setenv("MAX_FACES", "2")
    settings, _ = made()
    assert settings.batch_size == 4 and settings.max_faces == 2  # the environment wins over .env, under either name
    env.setenv("TRACK_GAP_S", "7")
    settings, _ = made()
    assert settings.track_gap_s == 2.5  # and a RAMFER_ name anywhere wins over an old name anywhere


def test_secrets_files_take_the_ramfer_names_and_the_old_ones(env, tmp_path):
    secrets = tmp_path / "secrets"
    (secrets / "ramfer_s3_secret_access_key").write_text("new-secret\n")
    (secrets / "s3_access_key_id").write_text("old-key\n")  # the name files had before the prefix
    (secrets / "RAMFER_S3_BUCKET").write_text("bucket-new")  # any case
    (secrets / "s3_bucket").write_text("bucket-old")
    (secrets / "redis_url").write_text("redis://:pw@secret:6379/0")
    settings, warned = made()
    assert settings.s3_secret_access_key.get_secret_value() == "new-secret"
    assert settings.s3_access_key_id.get_secret_value() == "old-key"
    assert settings.s3_bucket == "bucket-new" and settings.redis_url == "redis://:pw@secret:6379/0"
    assert sorted(warned) == [
        f"S3_ACCESS_KEY_ID (a file in {secrets}) is an old name: rename it RAMFER_S3_ACCESS_KEY_ID (the old names will stop working)",
        f"S3_BUCKET (a file in {secrets}) is an old name and is ignored: RAMFER_S3_BUCKET is set there too; remove S3_BUCKET",
    ]
    env.setenv("RAMFER_S3_BUCKET", "bucket-env")
    assert made()[0].s3_bucket == "bucket-env"  # the environment wins over secrets files


def test_the_secrets_folder_is_moved_by_ramfer_secrets_dir_or_its_old_name_or_a_keyword(env, tmp_path):
    other = tmp_path / "other-secrets"
    other.mkdir()
    (other / "ramfer_s3_region").write_text("eu-west-3")
    env.setenv("RAMFER_SECRETS_DIR", str(other))
    settings, warned = made()
    assert settings.s3_region == "eu-west-3" and warned == []
    env.delenv("RAMFER_SECRETS_DIR")
    env.setenv("SECRETS_DIR", str(other))
    settings, warned = made()
    assert settings.s3_region == "eu-west-3"
    assert warned == [
        "SECRETS_DIR (environment) is an old name: rename it RAMFER_SECRETS_DIR (the old names will stop working)"
    ]
    env.delenv("SECRETS_DIR")
    assert made(_secrets_dir=other)[0].s3_region == "eu-west-3"  # as tests/test_storage.py gives it


def test_the_workers_serve_starts_get_the_ramfer_names_only(env, tmp_path):
    from service.embedded import worker_env

    env.setenv("STORAGE_DIR", "/old/storage")  # serve read it (with a warning) and passes its value on
    env.setenv("DEVICE", "cpu")  # not one worker_env sets: passed on as it is
    given = worker_env("redis://embedded", 2, tmp_path / "storage")
    assert given["RAMFER_REDIS_URL"] == "redis://embedded" and given["RAMFER_STORAGE_DIR"] == str(tmp_path / "storage")
    assert given["RAMFER_TORCH_THREADS"] == "2" and given["RAMFER_SERVE_PID"].isdigit()
    assert "STORAGE_DIR" not in given and "REDIS_URL" not in given and given["DEVICE"] == "cpu"


def test_every_setting_is_described_and_no_setting_takes_a_name_read_elsewhere():
    fields = Settings.model_fields
    assert [name for name, field in fields.items() if not (field.description or "").strip()] == []
    assert set(NOT_SETTINGS).isdisjoint(env_name(name) for name in fields)
    first = next(iter(fields.values()))
    assert "section" in first.json_schema_extra  # every row of the table is under a heading
    rows = [line for line in markdown_reference().splitlines() if line.startswith("| `RAMFER_")]
    assert len(rows) == len(fields)


def test_the_docs_table_is_the_one_the_settings_make():
    text = DOC.read_text()
    assert text.count(MARKERS[0]) == 1 and text.count(MARKERS[1]) == 1
    block = text[text.index(MARKERS[0]) : text.index(MARKERS[1]) + len(MARKERS[1])]
    assert block == markdown_reference(), (
        "docs/configuration.md's table differs from service/settings.py: run "
        "`python -m service settings --write docs/configuration.md`"
    )


def test_the_settings_command_prints_values_hides_secrets_and_writes_the_table(env, tmp_path, capsys):
    from service.__main__ import main

    env.setenv("RAMFER_S3_SECRET_ACCESS_KEY", "s3cret")
    env.setenv("RAMFER_WORKERS", "3")
    main(["settings"])
    out = capsys.readouterr().out
    assert "s3cret" not in out and any(
        line.split() == ["RAMFER_S3_SECRET_ACCESS_KEY", "**********"] for line in out.splitlines()
    )
    assert ["RAMFER_WORKERS", "3"] in [line.split() for line in out.splitlines()]
    main(["settings", "--markdown"])
    assert capsys.readouterr().out == markdown_reference() + "\n"
    page = tmp_path / "page.md"
    page.write_text(f"# Settings\n\nBefore.\n\n{MARKERS[0]}\nstale\n{MARKERS[1]}\n\nAfter.\n")
    main(["settings", "--write", str(page)])
    assert page.read_text() == f"# Settings\n\nBefore.\n\n{markdown_reference()}\n\nAfter.\n"
    with pytest.raises(ValueError, match="settings:start"):
        with_reference("no markers here")
