"""Master keys (key-encryption keys) that wrap the per-tenant data keys.

Local: ``HEALTHAPP_MASTER_KEY`` (base64 of 32 bytes) or ``HEALTHAPP_MASTER_KEY_FILE``; the embedded
default generates ``var/keys/master.key``. Previous master keys stay readable during a rotation
(``HEALTHAPP_PREVIOUS_MASTER_KEYS``, comma-separated base64, and ``var/keys/master-*.previous``).
AWS KMS: ``HEALTHAPP_KMS_KEY_ID`` (+ ``AWS_*``/``HEALTHAPP_KMS_ENDPOINT_URL``) wraps through KMS instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from healthapp.crypto.errors import DecryptionError, KeyUnavailableError
from healthapp.env import env_secret

WRAP_NONCE = 12


class Kek(Protocol):
    kek_id: str

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


@dataclass(frozen=True)
class LocalKek:
    """AES-256-GCM key wrapping under a 32-byte master key held by this process."""

    key: bytes = field(repr=False)  # never in a repr: a debug page's locals or a traceback would show it

    @property
    def kek_id(self) -> str:
        return "local:" + hashlib.sha256(b"kek-id" + self.key).hexdigest()[:16]

    def wrap(self, key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(WRAP_NONCE)
        return nonce + AESGCM(self.key).encrypt(nonce, key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        try:
            return AESGCM(self.key).decrypt(wrapped[:WRAP_NONCE], wrapped[WRAP_NONCE:], context)
        except InvalidTag:
            raise DecryptionError("data key does not unwrap under this master key") from None


@dataclass(frozen=True)
class KmsKek:
    """AWS KMS (or a KMS-protocol server): the master key never leaves KMS."""

    key_id: str
    endpoint_url: str | None = None
    region: str = "ap-northeast-1"

    @property
    def kek_id(self) -> str:
        return f"kms:{self.key_id}"

    def _client(self):
        import boto3

        return boto3.client("kms", endpoint_url=self.endpoint_url, region_name=self.region)

    def wrap(self, key: bytes, context: bytes) -> bytes:
        response = self._client().encrypt(
            KeyId=self.key_id, Plaintext=key, EncryptionContext={"healthapp": context.hex()}
        )
        return response["CiphertextBlob"]

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self._client().decrypt(
                CiphertextBlob=wrapped, KeyId=self.key_id, EncryptionContext={"healthapp": context.hex()}
            )
        except ClientError as exc:
            raise DecryptionError(f"KMS refused to unwrap the data key ({exc.response['Error']['Code']})") from None
        return response["Plaintext"]


def decode_master_key(raw: str, source: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{source} is not valid base64") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{source} must decode to 32 bytes, got {len(key)}")
    return key


def generate_master_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(os.urandom(32)).decode())


def keys_dir() -> Path:
    return Path(settings.VAR_DIR) / "keys"


@lru_cache(maxsize=1)
def master_keys() -> tuple[Kek, dict[str, Kek]]:
    """The current master key and every known one by id (current + previous), loaded once per process."""
    kms_key = os.environ.get("HEALTHAPP_KMS_KEY_ID")
    current: Kek
    if kms_key:
        current = KmsKek(
            key_id=kms_key,
            endpoint_url=os.environ.get("HEALTHAPP_KMS_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_DEFAULT_REGION", "ap-northeast-1"),
        )
    else:
        raw = env_secret("HEALTHAPP_MASTER_KEY")
        if raw:
            current = LocalKek(decode_master_key(raw, "HEALTHAPP_MASTER_KEY"))
        elif settings.PRODUCTION:
            raise KeyUnavailableError(
                "HEALTHAPP_MASTER_KEY (or _FILE) or HEALTHAPP_KMS_KEY_ID is required in production"
            )
        else:
            path = keys_dir() / "master.key"
            if not path.exists():
                generate_master_key_file(path)
            current = LocalKek(decode_master_key(path.read_text(), str(path)))
    known: dict[str, Kek] = {current.kek_id: current}
    previous = [p for p in os.environ.get("HEALTHAPP_PREVIOUS_MASTER_KEYS", "").split(",") if p.strip()]
    for i, raw in enumerate(previous):
        kek = LocalKek(decode_master_key(raw, f"HEALTHAPP_PREVIOUS_MASTER_KEYS[{i}]"))
        known.setdefault(kek.kek_id, kek)
    if keys_dir().is_dir():
        for path in sorted(keys_dir().glob("master-*.previous")):
            kek = LocalKek(decode_master_key(path.read_text(), str(path)))
            known.setdefault(kek.kek_id, kek)
    return current, known


def reset_master_keys() -> None:
    """Forget the loaded master keys (after a rotation, or in tests)."""
    master_keys.cache_clear()
