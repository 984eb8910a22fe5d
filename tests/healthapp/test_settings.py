"""Settings come from the environment; production refuses to start half-configured."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from healthapp.env import env_bool, env_int, env_secret

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHAPP_", "DATABASE_", "REDIS_", "S3_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("HEALTHAPP_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="HEALTHAPP_DEBUG"):
        env_bool("HEALTHAPP_DEBUG")


def test_bad_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT_MINUTES", "half an hour")
    with pytest.raises(ImproperlyConfigured, match="SESSION_IDLE_TIMEOUT_MINUTES"):
        env_int("SESSION_IDLE_TIMEOUT_MINUTES", 30)


def test_secret_from_file(monkeypatch, tmp_path):
    secret = tmp_path / "s"
    secret.write_text("from-a-file\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET") == "from-a-file"


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = _manage("check", HEALTHAPP_ENV="production", HEALTHAPP_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "HEALTHAPP_SECRET_KEY" in result.stderr


PRODUCTION = {
    "HEALTHAPP_ENV": "production",
    "HEALTHAPP_SECRET_KEY": "x" * 60 + "-production-like-secret-value",
    "ALLOWED_HOSTS": "health.example",
}


def test_production_check_deploy_is_clean(tmp_path):
    master = base64.b64encode(os.urandom(32)).decode()
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        HEALTHAPP_VAR_DIR=str(tmp_path), HEALTHAPP_MASTER_KEY=master, **PRODUCTION,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_production_without_master_key_fails_the_deploy_check(tmp_path):
    result = _manage("check", "--deploy", HEALTHAPP_VAR_DIR=str(tmp_path), **PRODUCTION)
    assert result.returncode != 0 and "healthapp.E003" in result.stderr
    assert not (tmp_path / "keys" / "master.key").exists()  # production never generates one


def test_a_malformed_master_key_is_named(tmp_path):
    result = _manage(
        "check", "--deploy", HEALTHAPP_VAR_DIR=str(tmp_path), HEALTHAPP_MASTER_KEY="c2hvcnQ=", **PRODUCTION
    )
    assert "must decode to 32 bytes" in result.stderr


def test_embedded_default_generates_its_secret_key_once(tmp_path):
    _manage("check", HEALTHAPP_VAR_DIR=str(tmp_path))
    key_file = tmp_path / "keys" / "secret_key"
    first = key_file.read_text()
    assert len(first) > 40 and oct(key_file.stat().st_mode)[-3:] == "600"
    _manage("check", HEALTHAPP_VAR_DIR=str(tmp_path))
    assert key_file.read_text() == first


@pytest.mark.postgres
def test_postgresql_connections_run_without_jit(db):
    """The pages' short queries over a big tenant passed the JIT thresholds and compiled longer than they
    ran (see bench/checkup_pages.py): the application's connections start with JIT off."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_the_deploy_check_asks_for_an_audit_archive_apart_from_the_uploads(settings, monkeypatch):
    from healthapp.checks import check_audit_archive_apart

    monkeypatch.setenv("S3_ACCESS_KEY_ID", "files-key")
    settings.S3_BUCKET, settings.AUDIT_S3_BUCKET, settings.AUDIT_S3_ACCESS_KEY_ID = "files", "files", "files-key"
    assert [w.msg for w in check_audit_archive_apart()] == [
        "AUDIT_S3_BUCKET is the uploads' bucket (S3_BUCKET)",
        "the audit archive is written with the file store's credentials",
    ]
    settings.AUDIT_S3_BUCKET, settings.AUDIT_S3_ACCESS_KEY_ID = "audit-archive", "archive-key"
    assert check_audit_archive_apart() == []
    settings.AUDIT_S3_BUCKET = ""  # the local folder of the embedded default
    assert check_audit_archive_apart() == []
