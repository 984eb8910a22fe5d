"""Where shipped audit batches go: an S3 bucket with Object Lock (COMPLIANCE), or a local folder.

Both write an object at most once: ``put_once`` on an existing key checks the stored checksum and does
nothing, so a re-run after a crash never adds a second copy (nor, on S3, a second version).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings


class ArchiveUnavailable(RuntimeError):
    """The archive could not be reached or refused the write; nothing was marked shipped."""


class ArchiveConflict(RuntimeError):
    """An object already exists under the key with other content than this batch."""


def sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class Archive(Protocol):
    def put_once(self, key: str, body: bytes, *, metadata: dict[str, str]) -> bool: ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (verify_audit finds a chain's archived batches by their names)."""
        ...

    def get(self, key: str) -> bytes: ...


def retain_until(now: dt.datetime, years: int) -> dt.datetime:
    try:
        return now.replace(year=now.year + years)
    except ValueError:  # 29 February
        return now.replace(year=now.year + years, day=28)


class S3Archive:
    """boto3 straight to the bucket: Object Lock COMPLIANCE for ``lock_years``, SHA-256 checksum."""

    def __init__(self, *, client: Any, bucket: str, lock_years: int) -> None:
        self.client = client
        self.bucket = bucket
        self.lock_years = lock_years

    def put_once(self, key: str, body: bytes, *, metadata: dict[str, str]) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        checksum = sha256_b64(body)
        try:
            existing = self._head(key)
            if existing is not None:
                if existing.get("ChecksumSHA256") != checksum:
                    raise ArchiveConflict(f"{key} exists with other content")
                return False
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/gzip",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until(dt.datetime.now(dt.UTC), self.lock_years),
                Metadata=metadata,
            )
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveUnavailable(type(exc).__name__) from exc
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key that has a version under ``prefix``, one hidden by a delete marker too (a plain DELETE
        on a versioned bucket only adds a marker; the locked version stays and is what counts)."""
        from botocore.exceptions import BotoCoreError, ClientError

        seen: set[str] = set()
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    if version["Key"] not in seen:
                        seen.add(version["Key"])
                        yield version["Key"]
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveUnavailable(type(exc).__name__) from exc

    def get(self, key: str) -> bytes:
        """The key's first version: the one shipped and locked. A later PUT under the same key adds a version
        (Object Lock keeps versions, not keys) and must not replace what was archived."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            versions = [
                v
                for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
                for v in page.get("Versions", [])
                if v["Key"] == key
            ]
            if not versions:
                raise ArchiveUnavailable("NoSuchKey")
            first = versions[-1]  # S3 lists a key's versions newest first
            return self.client.get_object(Bucket=self.bucket, Key=key, VersionId=first["VersionId"])["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveUnavailable(type(exc).__name__) from exc

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise


class LocalArchive:
    """The embedded default: files under VAR_DIR/audit-archive, read-only once written. It keeps the
    chain's anchors off the database but not off the host: production ships to S3."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_once(self, key: str, body: bytes, *, metadata: dict[str, str]) -> bool:
        path = self.root / key
        if path.exists():
            if sha256_b64(path.read_bytes()) != sha256_b64(body):
                raise ArchiveConflict(f"{key} exists with other content")
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(body)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except OSError as exc:
            raise ArchiveUnavailable(type(exc).__name__) from exc
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        for path in sorted(self.root.glob(prefix.rstrip("/") + "/**/*.jsonl.gz")):
            yield path.relative_to(self.root).as_posix()

    def get(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except OSError as exc:
            raise ArchiveUnavailable(type(exc).__name__) from exc


def s3_client(*, endpoint_url: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or settings.AUDIT_S3_ENDPOINT_URL or None,
        region_name=settings.AUDIT_S3_REGION,
        aws_access_key_id=settings.AUDIT_S3_ACCESS_KEY_ID,
        aws_secret_access_key=settings.AUDIT_S3_SECRET_ACCESS_KEY,
        # Fail fast: the Celery task retries with backoff, so boto3 need not wait long itself.
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def archive_from_settings() -> Archive:
    if settings.AUDIT_S3_BUCKET:
        return S3Archive(client=s3_client(), bucket=settings.AUDIT_S3_BUCKET, lock_years=settings.AUDIT_LOCK_YEARS)
    return LocalArchive(settings.AUDIT_ARCHIVE_DIR)
