"""Re-encrypting a tenant's rows under its newest data key, in resumable batches."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.db import models, transaction

from healthapp.crypto import keyring
from healthapp.crypto.fields import EncryptedMixin, Sealed, fresh
from healthapp.crypto.primitives import key_version_of
from tenants.context import tenant_context
from tenants.models import Tenant, TenantScopedModel


def encrypted_models() -> list[tuple[type[models.Model], list[str]]]:
    found = []
    for model in apps.get_models():
        if not issubclass(model, TenantScopedModel):
            continue
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]
        if names:
            found.append((model, names))
    return found


def rows_to_reencrypt(*, tenant: Tenant) -> int:
    """How many rows of ``tenant`` still hold a value sealed under an older data-key version."""
    with tenant_context(tenant):
        active = keyring.active_version(tenant.pk)
        return sum(
            _is_stale(row, names, active)
            for model, names in encrypted_models()
            for row in model.objects.only(*_columns(model, names)).iterator(chunk_size=1000)
        )


def tenant_keys_rotate(
    *, tenant: Tenant, batch_size: int = 500, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Rotate ``tenant``'s data key and re-encrypt its rows, then seal its kept job files again.

    If an earlier run was interrupted (rows still under an older version), it resumes that rotation
    instead of starting another one. Each batch commits on its own; old key versions stay readable
    throughout, so the tenant keeps working while this runs. Returns counts.
    """
    from healthapp.jobs import job_files_reseal, job_files_stale

    started_new = False
    with tenant_context(tenant):
        files_left = job_files_stale(active_version=keyring.active_version(tenant.pk))
    if rows_to_reencrypt(tenant=tenant) == 0 and not files_left:
        keyring.data_key_rotate(tenant=tenant)
        started_new = True
    with tenant_context(tenant):
        active = keyring.active_version(tenant.pk)
        total = sum(model.objects.count() for model, _ in encrypted_models())
    done = rewritten = 0
    for model, names in encrypted_models():
        last_pk = 0
        while True:
            with tenant_context(tenant), transaction.atomic():
                batch = list(
                    model.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .order_by("pk")
                    .only(*_columns(model, names))[:batch_size]
                )
                for row in batch:
                    if _is_stale(row, names, active):
                        for name in names:
                            # Reading decrypts (any version); assigning plaintext makes save() re-seal
                            # under the active version.
                            setattr(row, name, fresh(getattr(row, name)))
                        row.save(update_fields=names)
                        rewritten += 1
            if not batch:
                break
            last_pk = batch[-1].pk
            done += len(batch)
            if progress:
                progress(done, total)
    # The uploads and side files that unfinished imports keep (personal and health data) too.
    with tenant_context(tenant):
        files = job_files_reseal(active_version=active)
    result = {
        "new_version": active, "started_new": int(started_new), "rows": done, "rewritten": rewritten, "files": files,
    }  # fmt: skip
    import audit

    audit.record(action="tenant.keys_rotated", tenant=tenant, actor=None, target_type="tenant", target_id=tenant.pk,
                 details=result)  # fmt: skip
    return result


def _columns(model: type[models.Model], names: list[str]) -> list[str]:
    # The row uid is part of the AAD: load it with the batch instead of once per row.
    has_uid = any(f.attname == "uid" for f in model._meta.concrete_fields)
    return ["pk", "tenant", *(["uid"] if has_uid else []), *names]


def _is_stale(row: models.Model, names: list[str], active: int) -> bool:
    for name in names:
        raw = row.__dict__.get(name)
        if isinstance(raw, Sealed) and key_version_of(raw) != active:
            return True
    return False
