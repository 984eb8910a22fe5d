"""The roster import with private storage on S3: a real S3-protocol server (moto's server mode, over HTTP),
spoken to by django-storages through boto3 as in production. The upload and the rows its dry run kept
are stored sealed and private, read back chunk by chunk from their offsets, and deleted once applied."""

from __future__ import annotations

import uuid

import boto3
import pytest

from healthapp import jobs
from healthapp.crypto.files import MAGIC
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.test_roster_import import apply, members, person, roster_csv, validate

REGION = "ap-northeast-1"


@pytest.fixture
def s3_bucket(s3_endpoint, settings):
    """A fresh bucket, and private storage pointed at it with the options production uses."""
    name = f"uploads-{uuid.uuid4().hex[:12]}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **credentials)
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    options = settings.STORAGES["default"]["OPTIONS"] if settings.S3_BUCKET else {}
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **options,
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": REGION,
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    return client, name


def _keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize("kept", [True, False], ids=["rows kept by the dry run", "rows read from the upload"])
def test_an_import_on_s3_stores_its_files_sealed_and_private_and_deletes_them_once_applied(
    world, s3_bucket, settings, django_capture_on_commit_callbacks, kept
):
    client, bucket = s3_bucket
    settings.ROSTER_IMPORT_CHUNK_ROWS = 2  # three chunks, each read back from where it starts
    rows = [person(f"S{i}", f"佐藤 {i}", email=f"s{i}@example.jp") for i in range(5)]
    job = validate(world.tenant_a, roster_csv(rows))
    assert job.state == Job.State.VALIDATED, job.errors
    assert _keys(client, bucket) == sorted([job.file, jobs.side_name(job)])
    for key in _keys(client, bucket):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body.startswith(MAGIC)
        assert "佐藤".encode("cp932") not in body and "佐藤".encode() not in body and b"example.jp" not in body
        grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"] and "URI" not in grants[0]["Grantee"]
    if not kept:  # as a job checked before the dry run kept its rows: the apply reads the upload by offset
        with tenant_context(world.tenant_a):
            job.plan.pop("kept")
            job.save(update_fields=["plan"])
    with django_capture_on_commit_callbacks(execute=True):
        done = apply(world.tenant_a, job)
    assert done.state == Job.State.DONE and done.counts["applied"]["added"] == 5
    roster = members(world.tenant_a)
    assert [(roster[f"S{i}"].name, roster[f"S{i}"].email) for i in range(5)] == [
        (f"佐藤 {i}", f"s{i}@example.jp") for i in range(5)
    ]
    assert _keys(client, bucket) == []
