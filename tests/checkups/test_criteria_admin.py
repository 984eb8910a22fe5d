"""Operators correct judgement criteria in the admin (/ops/admin/): every save is a NEW version, checked
like the judging reads it; stored versions stay as they were, and so do the judgements made under them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import chain_scope
from checkups import criteria
from checkups.judgement import judge
from checkups.models import CriteriaSet
from checkups.services import GRADES_SET, checkup_judge, checkup_record_save, criteria_current
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

ADMIN = "/ops/admin/checkups/criteriaset/"


SHIPPED = 2  # the versions shipped: 1, and 2 from migration 0011 (urine protein's MHLW values)


def _shipped() -> CriteriaSet:
    return CriteriaSet.objects.get(name=GRADES_SET, version=SHIPPED)


def _edited(change) -> str:
    data = {k: v for k, v in _shipped().data.items() if k not in {"name", "title", "effective_from"}}
    change(data)
    return json.dumps(data, ensure_ascii=False)


def _post_new_version(client: Client, data: str, *, effective_from: str | None = None, active: bool = True):
    form = {
        "name": GRADES_SET, "title": "統一判定基準（訂正）", "data": data, "_save": "Save",
        "effective_from": effective_from or timezone.localdate().isoformat(),
    }  # fmt: skip
    if active:
        form["is_active"] = "on"
    return client.post(f"{ADMIN}add/", form)


def _stricter_systolic(data: dict) -> None:
    data["items"]["systolic"]["bands"] = [["A", None], ["B", "125"], ["C", "135"], ["D", "160"]]


def test_saving_a_correction_stores_a_new_version_and_leaves_the_old_one(operator):
    user, client = operator
    listing = client.get(ADMIN).content.decode()
    assert "uniform_grades_v1" in listing and "specific_guidance_fy2024" in listing
    form = client.get(f"{ADMIN}add/?based_on={_shipped().pk}").content.decode()
    assert "systolic" in form and "この日以降の判定から使われます。" in form  # prefilled from the shipped version
    response = _post_new_version(client, _edited(_stricter_systolic))
    assert response.status_code == 302
    new = CriteriaSet.objects.get(name=GRADES_SET, version=SHIPPED + 1)
    assert new.data["items"]["systolic"]["bands"][2] == ["C", "135"]
    assert (new.title, new.data["title"], new.is_active) == ("統一判定基準（訂正）", "統一判定基準（訂正）", True)
    assert _shipped().data["items"]["systolic"]["bands"][2] == ["C", "140"] and _shipped().is_active  # untouched
    with chain_scope(None):
        event = AuditEvent.objects.get(action="criteria.version_created")
    assert (event.target_type, event.target_id, event.actor_id, event.tenant_id) == (
        "criteria_set", str(new.pk), user.pk, None
    )  # fmt: skip
    assert event.details == {"criteria": GRADES_SET, "version": SHIPPED + 1, "based_on": _shipped().pk, "active": True}


def test_stored_versions_are_read_only_and_cannot_be_deleted(operator):
    _user, client = operator
    v1 = _shipped()
    page = client.get(f"{ADMIN}{v1.pk}/change/").content.decode()
    assert "この版をもとに新しい版を作る" in page and 'name="_save"' not in page
    tampered = client.post(f"{ADMIN}{v1.pk}/change/", {"name": GRADES_SET, "title": "x", "data": "{}"})
    assert tampered.status_code == 403
    assert client.post(f"{ADMIN}{v1.pk}/delete/", {"post": "yes"}).status_code == 403
    assert _shipped().title == v1.title and CriteriaSet.objects.filter(name=GRADES_SET).count() == SHIPPED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"items": {', "JSON として読めません（1 行"),
        ("[1, 2]", "判定基準は JSON のオブジェクト"),
        (None, "items.systolic.bands[2]: 下限値は小さい順に並べてください。"),
    ],
)
def test_invalid_criteria_are_refused_with_a_japanese_error_and_nothing_saved(operator, data, message):
    _user, client = operator
    if data is None:  # bands out of order: 140 after 150
        data = _edited(lambda d: d["items"]["systolic"].update(bands=[["A", None], ["B", "150"], ["C", "140"]]))
    response = _post_new_version(client, data)
    assert response.status_code == 200 and message in response.content.decode()
    assert CriteriaSet.objects.filter(name=GRADES_SET).count() == SHIPPED
    with chain_scope(None):
        assert not AuditEvent.objects.filter(action="criteria.version_created").exists()


def test_a_document_the_judging_cannot_use_is_refused(operator):
    _user, client = operator
    unknown = _post_new_version(client, _edited(lambda d: d["items"].update(cholesterol={"bands": [["A", None]]})))
    assert "items.cholesterol: 項目カタログにない項目です。" in unknown.content.decode()
    unquoted = _post_new_version(client, _edited(lambda d: d["mhlw"]["hba1c"].update(guidance=5.6)))
    assert "mhlw.hba1c.guidance: 数値は" in unquoted.content.decode()
    assert CriteriaSet.objects.filter(name=GRADES_SET).count() == SHIPPED


def test_a_version_with_bands_by_sex_is_stored_and_grades_each_sex_by_its_own(operator):
    _user, client = operator

    def waist_by_sex(data: dict) -> None:
        data["items"]["waist"] = {"treated_by": None, "bands": {"male": [["A", None], ["C", "85"]],
                                                                "female": [["A", None], ["C", "90"]]}}  # fmt: skip

    assert _post_new_version(client, _edited(waist_by_sex)).status_code == 302
    rules = criteria.parse(CriteriaSet.objects.get(name=GRADES_SET, version=SHIPPED + 1).data)
    assert judge({"waist": D("87")}, rules, sex="male").grades == {"waist": "C"}
    assert judge({"waist": D("87")}, rules, sex="female").grades == {"waist": "A"}


def test_new_judgements_use_the_new_version_and_old_ones_keep_theirs(operator, world):
    _user, client = operator
    with tenant_context(world.tenant_a):
        person = world.roster_a[0]
        person.sex = "male"
        person.save()
        record = checkup_record_save(member=person, exam_date=dt.date(2025, 5, 1), program="regular",
                                     values={"systolic": D("137")})  # fmt: skip
        before = checkup_judge(record=record)
    assert (before.criteria.version, before.grades["systolic"]) == (SHIPPED, "B")
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    _post_new_version(client, _edited(_stricter_systolic), effective_from=tomorrow)
    assert criteria_current(GRADES_SET).version == SHIPPED  # dated ahead: waits for its day
    assert criteria_current(GRADES_SET, on=timezone.localdate() + dt.timedelta(days=1)).version == SHIPPED + 1
    _post_new_version(client, _edited(_stricter_systolic))  # the next version, in effect today
    with tenant_context(world.tenant_a):
        after = checkup_judge(record=record)
        before.refresh_from_db()
    assert (after.criteria.version, after.grades["systolic"]) == (SHIPPED + 2, "C")
    assert (before.criteria.version, before.grades["systolic"]) == (SHIPPED, "B")


def test_deactivating_a_version_changes_only_what_new_judgements_use(operator):
    _user, client = operator
    _post_new_version(client, _edited(_stricter_systolic))
    v2 = CriteriaSet.objects.get(name=GRADES_SET, version=SHIPPED + 1)
    response = client.post(ADMIN, {"action": "deactivate", "_selected_action": [v2.pk]})
    assert response.status_code == 302
    v2.refresh_from_db()
    assert v2.is_active is False and v2.data["items"]["systolic"]["bands"][2] == ["C", "135"]
    assert criteria_current(GRADES_SET).version == SHIPPED
    client.post(ADMIN, {"action": "activate", "_selected_action": [v2.pk]})
    assert criteria_current(GRADES_SET).version == SHIPPED + 1
    with chain_scope(None):
        actions = list(
            AuditEvent.objects.filter(target_type="criteria_set").order_by("seq").values_list("action", flat=True)
        )
    assert actions == ["criteria.version_created", "criteria.version_deactivated", "criteria.version_activated"]


def test_tenant_staff_cannot_reach_the_criteria_admin(world):
    client = Client()
    log_in(client, "admin@a.example", TEST_PASSWORD + "!x")  # an org admin: a tenant user, not an operator
    response = client.get(ADMIN)
    assert response.status_code == 404  # the ops admin is not shown to tenants' users at all
    assert client.post(f"{ADMIN}add/", {"name": GRADES_SET, "data": "{}"}).status_code == 404
    assert CriteriaSet.objects.filter(name=GRADES_SET).count() == SHIPPED


def test_the_operator_command_stores_a_new_version_the_same_way(db, tmp_path):
    from django.core.management import CommandError, call_command

    bad = tmp_path / "bad.json"
    bad.write_text(_edited(lambda d: d["items"]["hdl"].update(treated_by="statins")), encoding="utf-8")
    with pytest.raises(CommandError, match=r"items\.hdl\.treated_by"):
        call_command("criteria_version", GRADES_SET, str(bad), "--effective-from", "2026-04-01")
    good = tmp_path / "good.json"
    good.write_text(_edited(_stricter_systolic), encoding="utf-8")
    call_command("criteria_version", GRADES_SET, str(good), "--effective-from", "2026-04-01", "--check")
    assert CriteriaSet.objects.filter(name=GRADES_SET).count() == SHIPPED  # --check stores nothing
    call_command("criteria_version", GRADES_SET, str(good), "--effective-from", "2026-04-01")
    new = CriteriaSet.objects.get(name=GRADES_SET, version=SHIPPED + 1)
    assert (new.effective_from, new.title) == (dt.date(2026, 4, 1), _shipped().title)
    with chain_scope(None):
        event = AuditEvent.objects.get(action="criteria.version_created")
    assert event.actor_id is None and event.target_id == str(new.pk)
