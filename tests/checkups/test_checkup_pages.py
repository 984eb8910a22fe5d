"""Checkup pages as their users see them: the employee's results and trends, the physician's queue
and 就業判定, HR's conclusions without lab values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.test import Client

from accounts.models import Role
from accounts.services import label_grant_create, member_create, user_create
from audit.models import AuditEvent
from checkups.models import PhysicianOpinion
from checkups.services import checkup_judge, checkup_record_save
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

STAFF_PASSWORD = TEST_PASSWORD + "!x"
VALUES = {"waist": D("92"), "bmi": D("26.1"), "weight": D("78.5"), "systolic": D("142"), "diastolic": D("88"),
          "hdl": D("38"), "ldl": D("125"), "hba1c": D("5.8")}  # fmt: skip


@pytest.fixture
def clinic(world):
    """An employee of 営業部 with two years of checkups, a physician for 営業部, an HR person."""
    with tenant_context(world.tenant_a):
        patient = world.roster_a[0]  # member@a.example, 東京本社/営業部
        patient.sex, patient.birth_date = "male", dt.date(1975, 6, 1)
        patient.save()
        for year, systolic in ((2024, D("132")), (2025, D("142"))):
            record = checkup_record_save(
                member=patient, exam_date=dt.date(year, 5, 20), program="regular",
                values={**VALUES, "systolic": systolic}, questionnaire={"hours_since_meal": "12"},
            )  # fmt: skip
            checkup_judge(record=record)
        from tenants.services import office_create

        elsewhere = member_create(employee_number="O-1", name="他 部署", office=office_create(name="札幌支店"),
                                  sex="female", birth_date=dt.date(1980, 1, 1))  # fmt: skip
        other = checkup_record_save(member=elsewhere, exam_date=dt.date(2025, 6, 1), program="regular", values=VALUES)
        checkup_judge(record=other)
        staff = {}
        for key, role, label, scope in (("doc", Role.PHYSICIAN, "physician", "department"),
                                        ("hr", Role.HR_ADMIN, "hr_staff", "tenant")):  # fmt: skip
            member = member_create(employee_number=f"S-{key}", name=f"職員 {key}", office=world.office_a,
                                   department=world.department_a)  # fmt: skip
            staff[key] = user_create(
                email=f"{key}@a.example", role=role, tenant=world.tenant_a, password=STAFF_PASSWORD, member=member
            )
            label_grant_create(office=world.office_a, target_kind="employee", target=f"S-{key}", labels=[label],
                               scope_=scope, acting_user=world.admin_a)  # fmt: skip
    return {"record": record, "other": other, **staff}


def _client(email, password=STAFF_PASSWORD) -> Client:
    client = Client()
    assert log_in(client, email, password).status_code == 302
    return client


def test_employee_sees_grades_explained_and_trend_charts(world, clinic):
    client = _client("member@a.example", TEST_PASSWORD)
    page = client.get("/checkups/mine/").content.decode()
    assert "2025年度" in page and "2024年度" in page
    assert 'class="grade grade-C"' in page and "生活習慣の見直し" in page
    assert page.count("<svg") >= 3 and "142" in page  # weight, BMI, blood pressure, … over two years
    with tenant_context(world.tenant_a):
        assert AuditEvent.objects.filter(action="checkup.viewed", actor_id=world.member_a.pk).count() == 2


def test_physician_queue_holds_only_records_in_scope(world, clinic):
    doc = _client("doc@a.example")
    queue = doc.get("/checkups/review/").content.decode()
    assert "甲野 0" in queue and "他 部署" not in queue  # department scope
    assert "2024-08-20" in queue  # deadline: 3 months after the 2024-05-20 exam
    assert doc.get(f"/checkups/review/{clinic['other'].pk}/").status_code == 404


def test_physician_signs_a_restriction_and_hr_sees_only_the_conclusion(world, clinic):
    doc = _client("doc@a.example")
    record = clinic["record"]
    missing = doc.post(f"/checkups/review/{record.pk}/", {"fitness": "restricted", "follow_up": "consult"})
    assert "就業制限の内容を1つ以上選んでください。" in missing.content.decode()
    done = doc.post(
        f"/checkups/review/{record.pk}/",
        {"fitness": "restricted", "restrictions": ["no_overtime"], "follow_up": "consult", "opinion": "血圧管理"},
    )
    assert done.status_code == 302
    with tenant_context(world.tenant_a):
        opinion = PhysicianOpinion.objects.get(record=record)
        assert (opinion.fitness, opinion.restrictions, opinion.signed_by_id) == (
            "restricted",
            ["no_overtime"],
            clinic["doc"].pk,
        )
    queue = doc.get("/checkups/review/").content.decode()
    assert "2025-05-20" not in queue and "2024-05-20" in queue  # the signed record left the queue
    hr = _client("hr@a.example")
    page = hr.get("/checkups/conclusions/").content.decode()
    assert "就業制限" in page and "受診勧奨" in page
    assert "142" not in page and "5.8" not in page  # no lab values for HR
    assert hr.get("/checkups/review/").status_code == 404
    assert hr.get(f"/checkups/review/{record.pk}/").status_code == 404


def test_employees_and_outsiders_get_404(world, clinic):
    employee = _client("member@a.example", TEST_PASSWORD)
    assert employee.get("/checkups/review/").status_code == 404
    assert employee.get("/checkups/conclusions/").status_code == 404
    outsider = _client("outsider@b.example")
    assert outsider.get(f"/checkups/review/{clinic['record'].pk}/").status_code == 404


def test_hr_dashboard_counts_grades_and_suppresses_small_groups(world, clinic):
    with tenant_context(world.tenant_a):
        for i in range(5):  # five more people in 営業部 with a 2025 checkup: a group big enough to show
            person = member_create(
                employee_number=f"G-{i}", name=f"集計 {i}", office=world.office_a, department=world.department_a,
                sex="female", birth_date=dt.date(1985, 1, 1),
            )  # fmt: skip
            values = {"systolic": D("120"), "ldl": D("100")}
            record = checkup_record_save(member=person, exam_date=dt.date(2025, 7, 1), program="regular", values=values)
            checkup_judge(record=record)
    page = _client("hr@a.example").get("/checkups/dashboard/").content.decode()
    assert "2025年度" in page
    sales_row = page.split("営業部")[1].split("</tr>")[0]
    assert "<td>6</td>" in sales_row  # 6 people: the employee + 5
    assert "札幌支店" in page and "5人未満のため非表示" in page  # one person in Sapporo: suppressed
    assert "142" not in page
