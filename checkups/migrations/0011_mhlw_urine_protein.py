"""Version 2 of the grading set: the MHLW judgement values for urine protein (尿蛋白: 保健指導判定値 ±,
受診勧奨判定値 +) were missing from version 1. Stored versions are never changed, so the newest stored
version is copied with the item added, as an operator's correction would be (a set that already has it,
or a database without the set, is left alone)."""

import copy

from django.db import migrations

NAME = "uniform_grades_v1"
# Answer codes of urine protein (OID 1.2.392.200119.6.2102): 1 −, 2 ±, 3 +, 4 ++, 5 +++.
URINE_PROTEIN = {"direction": "high", "guidance": "2", "referral": "3"}


def add(apps, schema_editor):
    CriteriaSet = apps.get_model("checkups", "CriteriaSet")
    newest = CriteriaSet.objects.filter(name=NAME).order_by("-version").first()
    if newest is None or "urine_protein" in newest.data.get("mhlw", {}):
        return
    data = copy.deepcopy(newest.data)
    data["mhlw"]["urine_protein"] = URINE_PROTEIN
    CriteriaSet.objects.create(
        name=NAME, version=newest.version + 1, title=newest.title, effective_from=newest.effective_from,
        data=data, is_active=newest.is_active,
    )  # fmt: skip


def remove(apps, schema_editor):
    CriteriaSet = apps.get_model("checkups", "CriteriaSet")
    newest = CriteriaSet.objects.filter(name=NAME).order_by("-version").first()
    if newest is not None and newest.data.get("mhlw", {}).get("urine_protein") == URINE_PROTEIN:
        if not apps.get_model("checkups", "Judgement").objects.filter(criteria=newest).exists():
            newest.delete()


class Migration(migrations.Migration):
    dependencies = [("checkups", "0010_results_in_record")]

    operations = [migrations.RunPython(add, remove)]
