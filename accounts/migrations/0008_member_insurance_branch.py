import healthapp.crypto.fields
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_member_insurance_card_partial"),
    ]

    # Added as NULL for the rows on file (a default of "" would be written to them as plaintext, which
    # the encrypted column refuses), then given the model's default, which lives in Python only.
    operations = [
        migrations.AddField(
            model_name="member",
            name="insurance_branch",
            field=healthapp.crypto.fields.EncryptedTextField(blank=True, null=True, verbose_name="枝番"),
        ),
        migrations.AlterField(
            model_name="member",
            name="insurance_branch",
            field=healthapp.crypto.fields.EncryptedTextField(blank=True, default="", null=True, verbose_name="枝番"),
        ),
    ]
