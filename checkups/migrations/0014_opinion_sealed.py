"""The physician's opinion text sealed like the roster's personal fields.

The new column keeps the field's name ("opinion" is part of each value's associated data, so a value sealed
under another name would never open under this one): the clear column is renamed first, each row's text is
sealed into the new one tenant by tenant (row-level security lets a row through only inside its tenant),
then the clear column is dropped.
"""

from django.db import migrations

import healthapp.crypto.fields


def _copy_each(apps, schema_editor, *, source: str, target: str) -> None:
    """Copy every stored opinion from column ``source`` to ``target``, tenant by tenant (row-level security
    lets a row through only inside its tenant); the field does the sealing or the opening. Then the deferred
    (same-tenant) foreign-key checks of the saved rows run now: PostgreSQL refuses to alter a table that
    still has such checks pending in the transaction, and the next step drops a column."""
    from tenants.context import tenant_context

    opinions = apps.get_model("checkups", "PhysicianOpinion")
    for tenant in apps.get_model("tenants", "Tenant").objects.order_by("pk"):
        with tenant_context(tenant):
            for row in opinions.objects.exclude(**{f"{source}__isnull": True}):
                if text := str(getattr(row, source)):  # (an encrypted column is never filtered on its value)
                    setattr(row, target, text)
                    row.save(update_fields=[target])
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def seal_opinions(apps, schema_editor) -> None:
    _copy_each(apps, schema_editor, source="opinion_plain", target="opinion")


def open_opinions(apps, schema_editor) -> None:
    _copy_each(apps, schema_editor, source="opinion", target="opinion_plain")


class Migration(migrations.Migration):
    dependencies = [("checkups", "0013_grade_snapshot_merged")]

    operations = [
        migrations.RenameField(model_name="physicianopinion", old_name="opinion", new_name="opinion_plain"),
        # Added without the default first: a column added to existing rows is filled with the default as the
        # database writes it, and an encrypted column takes no plaintext (its "" is stored as NULL by saves).
        migrations.AddField(
            model_name="physicianopinion",
            name="opinion",
            field=healthapp.crypto.fields.EncryptedTextField(blank=True, null=True, verbose_name="意見"),
        ),
        migrations.AlterField(
            model_name="physicianopinion",
            name="opinion",
            field=healthapp.crypto.fields.EncryptedTextField(blank=True, default="", null=True, verbose_name="意見"),
        ),
        migrations.RunPython(seal_opinions, open_opinions),
        migrations.RemoveField(model_name="physicianopinion", name="opinion_plain"),
    ]
