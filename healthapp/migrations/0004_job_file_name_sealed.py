import healthapp.crypto.fields
from django.db import migrations


class Migration(migrations.Migration):
    """The uploaded file's name is sealed like the file. Names stored in clear until now are dropped,
    not encrypted here: they only labelled past uploads for their uploader, and a migration that
    loaded each tenant's keys would depend on the key store's code of the day."""

    dependencies = [
        ("healthapp", "0003_same_tenant_user_keys"),
    ]

    operations = [
        migrations.RemoveField(model_name="job", name="file_name"),
        migrations.AddField(
            model_name="job",
            name="file_name",
            field=healthapp.crypto.fields.EncryptedTextField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="job",
            name="file_name",
            field=healthapp.crypto.fields.EncryptedTextField(blank=True, default="", null=True),
        ),
    ]
