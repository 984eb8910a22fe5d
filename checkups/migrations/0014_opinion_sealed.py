"""The physician's opinion text sealed like the roster's personal fields.

The new column keeps the field's name ("opinion" is part of each value's associated data, so a value sealed
under another name would never open under this one): the clear column is renamed first, each row's text is
sealed into the new one tenant by tenant (row-level security lets a row through only inside its tenant),
then the clear column is dropped.
"""

from django.db import migrations

import healthapp.crypto.fields


def _checks_now(schema_editor) -> None:
    """Run the deferred (same-tenant) foreign-key checks of the rows just saved now: PostgreSQL refuses to alter
    a table that still has such checks pending in the transaction, and the next step drops a column."""
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def seal_opinions(apps, schema_editor) -> None:
    from tenants.context import tenant_context
    from tenants.models import Tenant

    opinions = apps.get_model("checkups", "PhysicianOpinion")
    for tenant in Tenant.objects.order_by("pk"):
        with tenant_context(tenant):
            for row in opinions.objects.exclude(opinion_plain="").only("pk", "tenant_id", "opinion_plain"):
                row.opinion = row.opinion_plain
                row.save(update_fields=["opinion"])
    _checks_now(schema_editor)


def open_opinions(apps, schema_editor) -> None:
    from tenants.context import tenant_context
    from tenants.models import Tenant

    opinions = apps.get_model("checkups", "PhysicianOpinion")
    for tenant in Tenant.objects.order_by("pk"):
        with tenant_context(tenant):
            for row in opinions.objects.exclude(opinion__isnull=True):
                row.opinion_plain = str(row.opinion)
                row.save(update_fields=["opinion_plain"])
    _checks_now(schema_editor)


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
