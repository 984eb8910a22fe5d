"""Per-tenant keys: creation, lookup (cached unwrapped in process memory only), rotation, destruction."""

from __future__ import annotations

import os
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from healthapp.crypto.errors import KeyDestroyedError, KeyUnavailableError
from healthapp.crypto.kek import master_keys
from healthapp.crypto.primitives import header_for
from tenants.context import tenant_context
from tenants.models import Tenant, TenantKey

# (tenant id, purpose, version) → (expires at, raw key, AES-GCM cipher or None for index keys)
_cache: dict[tuple[int, str, int], tuple[float, bytes, AESGCM | None]] = {}
_active: dict[tuple[int, str], tuple[float, int]] = {}
_active_cipher: dict[int, tuple[float, AESGCM, bytes]] = {}
_ciphers: dict[tuple[int, int], tuple[float, AESGCM]] = {}
_index_keys: dict[tuple[int, str, int], tuple[float, bytes]] = {}
_lock = threading.Lock()
_ttl_seconds: float | None = None


def _ttl() -> float:
    # Bounded so that a key destroyed or rotated in another process is forgotten here soon after.
    global _ttl_seconds
    if _ttl_seconds is None:
        _ttl_seconds = float(getattr(settings, "HEALTHAPP_KEY_CACHE_SECONDS", 300))
    return _ttl_seconds


def _context(tenant_id: int, purpose: str, version: int) -> bytes:
    return f"healthapp-tenant-key|{tenant_id}|{purpose}|{version}".encode()


def forget_cached_keys(tenant_id: int | None = None) -> None:
    global _ttl_seconds
    with _lock:
        _ttl_seconds = None
        for store in (_cache, _active, _ciphers, _index_keys):
            for key in [k for k in store if tenant_id is None or k[0] == tenant_id]:
                del store[key]
        for key in [k for k in _active_cipher if tenant_id is None or k == tenant_id]:
            del _active_cipher[key]


def tenant_keys_create(*, tenant: Tenant) -> None:
    """Give a new tenant its first data key and its index key (called by tenants.services.tenant_create)."""
    # SQLite reuses the id of a tenant whose creation was rolled back: never serve that one's keys.
    forget_cached_keys(tenant.pk)
    with tenant_context(tenant):
        for purpose in (TenantKey.Purpose.DATA, TenantKey.Purpose.INDEX):
            if not TenantKey.objects.filter(purpose=purpose).exists():
                _new_key(tenant, purpose, version=1)


def _new_key(tenant: Tenant, purpose: str, *, version: int) -> TenantKey:
    current, _ = master_keys()
    raw = AESGCM.generate_key(bit_length=256) if purpose == TenantKey.Purpose.DATA else os.urandom(32)
    key = TenantKey(
        tenant=tenant,
        purpose=purpose,
        version=version,
        wrapped_key=current.wrap(raw, _context(tenant.pk, purpose, version)),
        kek_id=current.kek_id,
    )
    key.save()
    return key


def _load(tenant_id: int, purpose: str, version: int) -> bytes:
    row = (
        TenantKey.all_tenants.filter(tenant_id=tenant_id, purpose=purpose, version=version)
        .values_list("wrapped_key", "kek_id", "state")
        .first()
    )
    if row is None:
        raise KeyUnavailableError(f"tenant {tenant_id} has no {purpose} key version {version}")
    wrapped, kek_id, state = row
    if state == TenantKey.State.DESTROYED or not wrapped:
        raise KeyDestroyedError(f"the {purpose} keys of tenant {tenant_id} were destroyed")
    _, known = master_keys()
    kek = known.get(kek_id)
    if kek is None:
        raise KeyUnavailableError(f"master key {kek_id} is not configured (see HEALTHAPP_PREVIOUS_MASTER_KEYS)")
    return kek.unwrap(bytes(wrapped), _context(tenant_id, purpose, version))


def _entry(tenant_id: int, purpose: str, version: int) -> tuple[float, bytes, AESGCM | None]:
    cache_key = (tenant_id, purpose, version)
    hit = _cache.get(cache_key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit
    raw = _load(tenant_id, purpose, version)
    entry = (now + _ttl(), raw, AESGCM(raw) if purpose == TenantKey.Purpose.DATA else None)
    with _lock:
        _cache[cache_key] = entry
    return entry


def key_bytes(tenant_id: int, purpose: str, version: int) -> bytes:
    return _entry(tenant_id, purpose, version)[1]


def aead_for(tenant_id: int, version: int) -> AESGCM:
    """The AES-GCM cipher of a tenant's data-key version, built once per cache period."""
    hit = _ciphers.get((tenant_id, version))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    entry = _entry(tenant_id, TenantKey.Purpose.DATA, version)
    with _lock:
        _ciphers[(tenant_id, version)] = (entry[0], entry[2])
    return entry[2]


def index_key(tenant_id: int, purpose: str, *, version: int = 1) -> bytes:
    """The blind-index key of one purpose, derived with HKDF from the tenant's index secret, so the
    same value has unrelated index entries for different purposes and tenants."""
    hit = _index_keys.get((tenant_id, purpose, version))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    expires, secret, _ = _entry(tenant_id, TenantKey.Purpose.INDEX, version)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"blind-index|{purpose}".encode()).derive(
        secret
    )
    with _lock:
        _index_keys[(tenant_id, purpose, version)] = (expires, derived)
    return derived


def active_cipher(tenant_id: int) -> tuple[AESGCM, bytes]:
    """The cipher of the tenant's active data key and the sealed-value header naming its version."""
    hit = _active_cipher.get(tenant_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    version = active_version(tenant_id)
    entry = _entry(tenant_id, TenantKey.Purpose.DATA, version)
    with _lock:
        _active_cipher[tenant_id] = (entry[0], entry[2], header_for(version))
    return entry[2], header_for(version)


def active_version(tenant_id: int, purpose: str = TenantKey.Purpose.DATA) -> int:
    now = time.monotonic()
    hit = _active.get((tenant_id, purpose))
    if hit is not None and hit[0] > now:
        return hit[1]
    version = (
        TenantKey.all_tenants.filter(tenant_id=tenant_id, purpose=purpose, state=TenantKey.State.ACTIVE)
        .values_list("version", flat=True)
        .first()
    )
    if version is None:
        if TenantKey.all_tenants.filter(tenant_id=tenant_id, state=TenantKey.State.DESTROYED).exists():
            raise KeyDestroyedError(f"the keys of tenant {tenant_id} were destroyed")
        raise KeyUnavailableError(f"tenant {tenant_id} has no active {purpose} key")
    with _lock:
        _active[(tenant_id, purpose)] = (now + _ttl(), version)
    return version


@transaction.atomic
def data_key_rotate(*, tenant: Tenant) -> int:
    """Start a new data-key version for ``tenant``; the previous one is kept for reading. Returns it."""
    with tenant_context(tenant):
        current = TenantKey.objects.select_for_update().get(purpose=TenantKey.Purpose.DATA, state="active")
        current.state = TenantKey.State.RETIRED
        current.save(update_fields=["state"])
        new = _new_key(tenant, TenantKey.Purpose.DATA, version=current.version + 1)
    forget_cached_keys(tenant.pk)
    return new.version


def master_key_rewrap() -> int:
    """Re-wrap every non-destroyed tenant key under the current master key; rows are not touched.

    Walks the tenants one by one inside each tenant's context, so row-level security lets it through
    under any role. Returns the number of keys re-wrapped.
    """
    current, known = master_keys()
    count = 0
    for tenant in Tenant.objects.order_by("pk"):
        with tenant_context(tenant):
            keys = TenantKey.objects.exclude(state=TenantKey.State.DESTROYED).exclude(kek_id=current.kek_id)
            for key in keys:
                old = known.get(key.kek_id)
                if old is None:
                    raise KeyUnavailableError(f"master key {key.kek_id} is not configured; cannot re-wrap")
                context = _context(key.tenant_id, key.purpose, key.version)
                raw = old.unwrap(bytes(key.wrapped_key), context)
                # A conditional update: a concurrent re-wrap of the same key cannot be overwritten.
                count += TenantKey.objects.filter(pk=key.pk, kek_id=key.kek_id).update(
                    wrapped_key=current.wrap(raw, context), kek_id=current.kek_id
                )
    forget_cached_keys()
    import audit  # here, not at the top: audit's own modules import this one

    audit.record(action="crypto.master_key_rewrapped", tenant=None, actor=None,
                 details={"keys": count, "kek": current.kek_id})  # fmt: skip
    return count


@transaction.atomic
def tenant_keys_destroy(*, tenant: Tenant) -> int:
    """Crypto-shredding: erase the wrapped keys of ``tenant``. Irreversible by design."""
    with tenant_context(tenant):
        live = TenantKey.objects.exclude(state=TenantKey.State.DESTROYED)
        count = live.update(wrapped_key=None, state=TenantKey.State.DESTROYED, destroyed_at=timezone.now())
    import audit

    # In the tenant-less chain: the tenant's own may be pruned with it; this is the certificate that it happened.
    audit.record(action="tenant.keys_destroyed", tenant=None, actor=None, target_type="tenant",
                 target_id=tenant.pk, details={"keys": count})  # fmt: skip
    forget_cached_keys(tenant.pk)
    return count
