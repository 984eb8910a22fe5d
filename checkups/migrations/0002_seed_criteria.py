"""Load the criteria sets shipped in checkups/criteria/ (version 1 of each)."""

import json
from pathlib import Path

from django.db import migrations

CRITERIA_DIR = Path(__file__).resolve().parents[1] / "criteria"
SHIPPED = ["uniform_grades_v1", "specific_guidance_fy2024"]


def load(apps, schema_editor):
    CriteriaSet = apps.get_model("checkups", "CriteriaSet")
    for name in SHIPPED:
        data = json.loads((CRITERIA_DIR / f"{name}.json").read_text(encoding="utf-8"))
        CriteriaSet.objects.get_or_create(
            name=name, version=1,
            defaults={"title": data["title"], "effective_from": data["effective_from"], "data": data},
        )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("checkups", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
