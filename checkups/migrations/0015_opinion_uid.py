"""Each physician's opinion gets a uid, part of its sealed text's associated data (an opinion copied onto
another record's row no longer opens there); the opinions stored so far are sealed again under it."""

import functools
import uuid

from django.db import migrations, models

from healthapp.crypto.rebinding import seal_under_new_uids

_FIELDS = {"model": "checkups.PhysicianOpinion", "fields": ("opinion",)}


class Migration(migrations.Migration):
    dependencies = [("checkups", "0014_opinion_sealed")]

    operations = [
        migrations.AddField(
            model_name="physicianopinion", name="uid", field=models.UUIDField(editable=False, null=True)
        ),
        migrations.RunPython(
            functools.partial(seal_under_new_uids, **_FIELDS),
            functools.partial(seal_under_new_uids, reverse=True, **_FIELDS),
        ),
        migrations.AlterField(
            model_name="physicianopinion",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
