"""Moving a model's sealed values onto a new row uid (for migrations that give a model its ``uid``).

A value's associated data ends with its row's uid on models that have one, so a ciphertext copied to
another row of the same tenant and field does not open there. A model that gains a uid must have every
stored value opened under the old associated data and sealed again under the new one, in the same
migration; and the other way when the uid is taken away again.
"""

from __future__ import annotations

import uuid

from healthapp.crypto.errors import KeyDestroyedError
from healthapp.crypto.fields import _aad_parts, open_row, seal_row
from tenants.context import tenant_context


def seal_under_new_uids(apps, schema_editor, *, model: str, fields: tuple[str, ...], reverse: bool = False) -> None:
    """Give every row of ``model`` (``"app_label.ModelName"``) a fresh uid and re-seal its ``fields``
    under it; ``reverse``: re-seal them without the uid (the uid column is dropped next). Tenant by
    tenant: each value is sealed under its tenant's key."""
    rows_of = apps.get_model(model)
    sealed_fields = [rows_of._meta.get_field(name) for name in fields]
    for f in sealed_fields:
        _aad_parts(f)
    for tenant in apps.get_model("tenants", "Tenant").objects.order_by("pk"):
        with tenant_context(tenant):
            # Filtered by tenant as well: migrations run as the owner role, which row-level security lets through.
            rows = rows_of.objects.filter(tenant_id=tenant.pk).values_list("pk", "uid", *fields)
            shredded = False
            for pk, uid, *values in list(rows):
                new_uid = None if reverse else uuid.uuid4()
                # NULL reads as "" on fields that store "" as NULL
                sealed = [(f, bytes(v)) for f, v in zip(sealed_fields, values, strict=True) if isinstance(v, bytes)]
                changes: dict = {"uid": new_uid}
                if sealed and not shredded:
                    old_aad = uid.bytes if reverse else b""
                    try:
                        plain = open_row(tenant.pk, old_aad, sealed)
                    except KeyDestroyedError:
                        # A crypto-shredded tenant: its values open nowhere, under any associated data. They stay as
                        # they are (unreadable either way); its rows get their uids all the same.
                        shredded = True
                    else:
                        items = [(f, value) for (f, _v), value in zip(sealed, plain, strict=True)]
                        resealed = seal_row(tenant.pk, new_uid.bytes if new_uid else b"", items)
                        changes.update({f.attname: value for (f, _v), value in zip(sealed, resealed, strict=True)})
                rows_of.objects.filter(pk=pk).update(**changes)
    if schema_editor.connection.vendor == "postgresql":
        # Same-tenant keys are deferred; PostgreSQL refuses to alter a table with checks pending.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
