"""資格取得日 on the roster, and the day an entry without a 資格喪失日 was turned off, so that a fiscal year's
特定健診 対象者 are those insured through it (checkups.selectors.guidance_summary). Entries turned off before
this get the day of their last change: the best the roster knows."""

from django.db import migrations, models
from django.db.models.functions import TruncDate


def _since_last_change(apps, schema_editor) -> None:
    # Migrations run as the owner role, which row-level security lets through: every tenant's entries at once.
    members = apps.get_model("accounts", "Member")
    members.objects.filter(is_active=False, inactive_since__isnull=True).update(inactive_since=TruncDate("updated_at"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0013_card_column_names")]

    operations = [
        migrations.AddField(
            model_name="member",
            name="inactive_since",
            field=models.DateField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="member",
            name="qualification_start",
            field=models.DateField(blank=True, null=True, verbose_name="資格取得日"),
        ),
        migrations.RunPython(_since_last_change, migrations.RunPython.noop),
    ]
