"""Shipping the chains to a real S3-protocol server (moto's server mode, over HTTP, through boto3):
Object Lock COMPLIANCE, checksums, deterministic keys, retries that drop nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

import audit
from audit.archive import ArchiveUnavailable, LocalArchive, S3Archive, s3_client
from audit.models import AuditChain
from audit.services import chain_scope, ship_pending
from tenants.context import tenant_context
from tests.conftest import _free_port

from .conftest import events_of, tamper


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """A fresh versioned, Object-Lock bucket, and the settings that point the archive at it."""
    name = f"audit-{uuid.uuid4().hex[:12]}"
    settings.AUDIT_S3_BUCKET = name
    settings.AUDIT_S3_ENDPOINT_URL = s3_endpoint
    settings.AUDIT_S3_ACCESS_KEY_ID = "testing"
    settings.AUDIT_S3_SECRET_ACCESS_KEY = "testing"
    settings.AUDIT_S3_REGION = "ap-northeast-1"
    client = s3_client()
    client.create_bucket(
        Bucket=name,
        ObjectLockEnabledForBucket=True,
        CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"},
    )
    return client, name


def _rewind_shipping(tenant) -> None:
    """What a crash between the upload and the progress update leaves (the head refuses this to any
    role but the owner with its guard disabled)."""
    tamper(
        "UPDATE audit_auditchain SET shipped_seq = 0, shipped_hash = %s WHERE chain = %s", ["0" * 64, str(tenant.pk)]
    )


def _objects(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def _versions(client, bucket: str) -> int:
    return len(client.list_object_versions(Bucket=bucket).get("Versions", []))


def _lines(client, bucket: str, key: str) -> list[dict]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines()]


def test_every_event_is_shipped_once_locked_in_compliance_mode_with_its_hash(world, bucket):
    client, name = bucket
    report = ship_pending()
    keys = _objects(client, name)
    assert keys == sorted(report.objects)
    a_key = next(k for k in keys if k.startswith(f"audit/{world.tenant_a.pk}/"))
    today = dt.datetime.now(dt.UTC)
    assert a_key == f"audit/{world.tenant_a.pk}/{today:%Y/%m/%d}/000000000001-000000000003.jsonl.gz"
    shipped = _lines(client, name, a_key)
    assert [(line["seq"], line["hash"]) for line in shipped] == [(e.seq, e.hash) for e in events_of(world.tenant_a)]
    head = client.head_object(Bucket=name, Key=a_key, ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    years = (head["ObjectLockRetainUntilDate"] - today).days / 365.25
    assert 6.9 < years < 7.1
    assert head["ChecksumSHA256"]
    assert head["Metadata"]["last-hash"] == shipped[-1]["hash"]
    with chain_scope(world.tenant_a):
        progress = AuditChain.objects.get(chain=str(world.tenant_a.pk))
    assert (progress.shipped_seq, progress.shipped_hash) == (3, shipped[-1]["hash"])


def test_a_locked_version_cannot_be_deleted(world, bucket):
    client, name = bucket
    ship_pending()
    key = _objects(client, name)[0]
    version = client.head_object(Bucket=name, Key=key)["VersionId"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=name, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert _lines(client, name, key)


def test_running_again_adds_nothing_and_new_events_get_their_own_object(world, bucket):
    client, name = bucket
    ship_pending()
    keys, versions = _objects(client, name), _versions(client, name)
    assert ship_pending().objects == []
    assert (_objects(client, name), _versions(client, name)) == (keys, versions)
    with tenant_context(world.tenant_a):
        audit.record(action="member.viewed", target_type="member", target_id=5)
    assert [k.rsplit("/", 1)[1] for k in ship_pending().objects] == ["000000000004-000000000004.jsonl.gz"]


def test_progress_lost_after_a_write_does_not_duplicate_the_object(committed_world, bucket):
    """A worker killed between the upload and the progress update: the next run finds the object."""
    world = committed_world
    client, name = bucket
    ship_pending()
    versions = _versions(client, name)
    _rewind_shipping(world.tenant_a)
    ship_pending()
    assert _versions(client, name) == versions
    with chain_scope(world.tenant_a):
        assert AuditChain.objects.get(chain=str(world.tenant_a.pk)).shipped_seq == 3


def test_an_unreachable_archive_drops_nothing_records_an_alert_and_fails_for_a_retry(world, bucket):
    client, name = bucket
    dead = S3Archive(client=s3_client(endpoint_url=f"http://127.0.0.1:{_free_port()}"), bucket=name, lock_years=7)
    with pytest.raises(ArchiveUnavailable):
        ship_pending(archive=dead)
    alerts = events_of(None, action="audit.ship_failed")
    assert {e.target_id for e in alerts} >= {str(world.tenant_a.pk), str(world.tenant_b.pk)}
    assert {e.outcome for e in alerts} == {"failure"}
    with chain_scope(world.tenant_a):
        assert AuditChain.objects.get(chain=str(world.tenant_a.pk)).shipped_seq == 0
    ship_pending()  # the archive is back: everything goes, the alerts included
    with chain_scope(world.tenant_a):
        assert AuditChain.objects.get(chain=str(world.tenant_a.pk)).shipped_seq == 3
    keys = _objects(client, name)
    none_lines = [line for k in keys if k.startswith("audit/none/") for line in _lines(client, name, k)]
    assert {line["action"] for line in none_lines} >= {"audit.ship_failed"}


def test_the_celery_task_ships_and_is_scheduled_every_minute(world, bucket, settings):
    from audit.tasks import ship_audit_log

    client, name = bucket
    result = ship_audit_log.delay().get()
    assert result["events"] >= 5 and len(_objects(client, name)) == result["objects"]
    assert settings.CELERY_BEAT_SCHEDULE["audit-ship"] == {"task": "audit.tasks.ship_audit_log", "schedule": 60.0}


def test_without_s3_the_embedded_default_writes_read_only_files(committed_world, settings, tmp_path):
    world = committed_world
    settings.AUDIT_S3_BUCKET = ""
    settings.AUDIT_ARCHIVE_DIR = tmp_path
    report = ship_pending()
    path = tmp_path / report.objects[-1]
    assert path.stat().st_mode & 0o222 == 0
    first = path.read_bytes()
    _rewind_shipping(world.tenant_b)
    assert LocalArchive(tmp_path).put_once(report.objects[-1], first, metadata={}) is False
    ship_pending()
    assert path.read_bytes() == first


def test_boto3_talks_http_to_the_server(s3_endpoint):
    """Not a mock: the bucket is reachable by a plain boto3 client over HTTP."""
    plain = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert "Buckets" in plain.list_buckets()


def test_what_was_shipped_counts_even_after_a_later_put_or_delete_under_its_key(world, bucket):
    """Object Lock keeps versions, not keys: a second PUT under a batch's key adds a version and a DELETE adds a
    marker. The archive reads the first version, and lists the key still."""
    from io import StringIO

    from django.core.management import call_command

    from audit.archive import archive_from_settings

    client, name = bucket
    ship_pending()
    key = next(k for k in _objects(client, name) if k.startswith(f"audit/{world.tenant_a.pk}/"))
    original = client.get_object(Bucket=name, Key=key)["Body"].read()
    client.put_object(Bucket=name, Key=key, Body=b"forged", ChecksumAlgorithm="SHA256")
    client.delete_object(Bucket=name, Key=key)
    assert key not in _objects(client, name)  # gone from a plain listing
    archive = archive_from_settings()
    assert key in list(archive.keys(f"audit/{world.tenant_a.pk}/")) and archive.get(key) == original
    out = StringIO()
    call_command("verify_audit", "--tenant", world.tenant_a.slug, stdout=out)
    assert f"chain {world.tenant_a.pk}: OK" in out.getvalue()
