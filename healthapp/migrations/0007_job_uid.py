"""Each job gets a uid, part of its sealed file name's associated data (a name copied onto another job of
the tenant no longer opens there); the names stored so far are sealed again under it."""

import functools
import uuid

from django.db import migrations, models

from healthapp.crypto.rebinding import seal_under_new_uids

_FIELDS = {"model": "healthapp.Job", "fields": ("file_name",)}


class Migration(migrations.Migration):
    dependencies = [("healthapp", "0006_job_number")]

    operations = [
        migrations.AddField(model_name="job", name="uid", field=models.UUIDField(editable=False, null=True)),
        migrations.RunPython(
            functools.partial(seal_under_new_uids, **_FIELDS),
            functools.partial(seal_under_new_uids, reverse=True, **_FIELDS),
        ),
        migrations.AlterField(
            model_name="job",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
