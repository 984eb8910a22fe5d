"""健診結果の閲覧: a 保健師・衛生管理者 (label health_staff, checkup.view) reads the results of the people in
their scope for 保健指導 — lab values, grades, MHLW levels, the 保健指導 level — read only, audited, never
their own record nor anyone outside their scope, and never a 就業判定 to sign."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from django.test import Client

from accounts.models import Role
from accounts.services import label_grant_create, member_create, user_create
from audit.models import AuditEvent
from checkups import selectors
from checkups.models import CheckupRecord
from checkups.services import checkup_judge, checkup_record_save
from tenants.context import tenant_context
from tenants.models import Office
from tenants.services import department_create, office_create
from tests.conftest import TEST_PASSWORD, log_in

STAFF_PASSWORD = TEST_PASSWORD + "!x"
VALUES = {"waist": D("92"), "bmi": D("26.1"), "weight": D("78.5"), "systolic": D("142"), "diastolic": D("88"),
          "hdl": D("38"), "ldl": D("125"), "hba1c": D("5.8")}  # fmt: skip
MILD = {"systolic": D("135"), "ldl": D("100")}  # grade B


def _record(member, exam_date: dt.date, values=VALUES) -> CheckupRecord:
    record = checkup_record_save(member=member, exam_date=exam_date, program="regular", values=values)
    checkup_judge(record=record)
    return record


def _staff(world, key: str, role: str, label: str, scope: str, department=None):
    """A login in 東京本社 (営業部 unless told) holding ``label`` with ``scope``."""
    member = member_create(employee_number=f"S-{key}", name=f"職員 {key}", office=world.office_a,
                           department=department or world.department_a)  # fmt: skip
    user = user_create(email=f"{key}@a.example", role=role, tenant=world.tenant_a, password=STAFF_PASSWORD,
                       member=member)  # fmt: skip
    label_grant_create(office=world.office_a, target_kind="employee", target=f"S-{key}", labels=[label],
                       scope_=scope, acting_user=world.admin_a)  # fmt: skip
    return user


@pytest.fixture
def ward(world):
    """In 営業部 the demo employee (2024 and 2025, grade C) and 軽度 一郎 (B); in 総務部 of the same office
    and in 札幌支店 one person each. A 保健師 of 営業部 (with a checkup of her own), HR for the whole tenant."""
    with tenant_context(world.tenant_a):
        patient = world.roster_a[0]  # member@a.example, 東京本社/営業部
        patient.sex, patient.birth_date = "male", dt.date(1975, 6, 1)
        patient.save()
        general = department_create(office=world.office_a, name="総務部")
        mild = member_create(employee_number="E-103", name="軽度 一郎", office=world.office_a,
                             department=world.department_a)  # fmt: skip
        other = member_create(employee_number="G-1", name="総務 花子", office=world.office_a, department=general)
        far = member_create(employee_number="O-1", name="他 支店", office=office_create(name="札幌支店"))
        nurse = _staff(world, "nurse", Role.HEALTH_STAFF, "health_staff", "department")
        return {
            "before": _record(patient, dt.date(2024, 5, 20), {**VALUES, "systolic": D("132")}),
            "record": _record(patient, dt.date(2025, 5, 20)),
            "mild": _record(mild, dt.date(2025, 6, 2), MILD),
            "other": _record(other, dt.date(2025, 6, 1)),
            "far": _record(far, dt.date(2025, 6, 3)),
            "own": _record(nurse.member, dt.date(2025, 5, 21)),
            "nurse": nurse,
            "hr": _staff(world, "hr", Role.HR_ADMIN, "hr_staff", "tenant"),
        }


def _judgement(world, record):
    with tenant_context(world.tenant_a):
        return record.judgements.get()


def _client(email: str, password: str = STAFF_PASSWORD) -> Client:
    client = Client()
    assert log_in(client, email, password).status_code == 302
    return client


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _list_rows(html: str) -> str:
    return html.split('data-testid="results-list"', 1)[1].split("</table>")[0]


def test_health_staff_find_the_page_and_see_their_department_only(world, ward):
    nurse = _client("nurse@a.example")
    assert "/checkups/results/" in nurse.get("/").content.decode()  # in the menu
    response = nurse.get("/checkups/results/")
    assert response.status_code == 200
    rows = _list_rows(response.content.decode())
    assert "甲野 0" in rows and "軽度 一郎" in rows  # 営業部
    assert "総務 花子" not in rows and "他 支店" not in rows  # another department, another office
    assert "職員 nurse" not in rows  # not her own: that is 自分の健診結果
    # who each row is, as the physician's queue shows it, and the grade and 保健指導 level
    row = rows.split(f"/checkups/results/{ward['record'].pk}/")[1].split("</tr>")[0]
    assert "社員番号 A0" in _text(row) and "・男性・受診時 49歳" in _text(row)
    judgement = _judgement(world, ward["record"])
    assert f"<td>{judgement.overall}</td>" in row and judgement.overall == "C"
    # newest exam first
    assert rows.index(f"/checkups/results/{ward['mild'].pk}/") < rows.index(f"/checkups/results/{ward['record'].pk}/")
    assert rows.index(f"/checkups/results/{ward['record'].pk}/") < rows.index(f"/checkups/results/{ward['before'].pk}/")
    # no lab values on the list
    assert "142" not in _text(rows) and "5.8" not in _text(rows)
    for record in ("other", "far", "own"):
        assert nurse.get(f"/checkups/results/{ward[record].pk}/").status_code == 404


def test_the_detail_shows_the_values_read_only_and_is_audited(world, ward):
    nurse = _client("nurse@a.example")
    record = ward["record"]
    page = nurse.get(f"/checkups/results/{record.pk}/").content.decode()
    results = _text(page.split('data-testid="results"', 1)[1].split("</table>")[0])
    assert "収縮期血圧" in results and "142 mmHg" in results and "5.8" in results
    assert "受診勧奨判定値に該当" in results or "保健指導判定値に該当" in results  # MHLW levels
    assert "前回（2024-05-20）" in results and "132" in results  # the previous year beside it
    judgement = _judgement(world, record)
    overall = _text(page.split('data-testid="overall"', 1)[1].split("</p>")[0])
    assert f"総合判定: {judgement.overall}" in overall and "保健指導:" in overall
    assert "社員番号 A0" in _text(page)
    # read only: no 就業判定 to sign, and a POST changes nothing
    assert '<form method="post" novalidate>' not in page and "署名して記録する" not in page
    assert "就業判定を記録する" not in page
    assert nurse.post(f"/checkups/results/{record.pk}/", {"fitness": "normal"}).status_code == 405
    with tenant_context(world.tenant_a):
        viewed = AuditEvent.objects.filter(action="checkup.viewed", actor_id=ward["nurse"].pk)
        assert sorted(viewed.values_list("target_id", flat=True)) == sorted([str(record.pk), str(ward["before"].pk)])
        assert not record.opinions.exists()


def test_the_list_is_audited_like_the_physicians_lists(world, ward):
    nurse = _client("nurse@a.example")
    nurse.get("/checkups/results/?year=2025")
    with tenant_context(world.tenant_a):
        event = AuditEvent.objects.get(action="checkup.results_listed", actor_id=ward["nurse"].pk)
    assert event.details["year"] == 2025
    assert sorted(event.details["records"]) == sorted([ward["record"].pk, ward["mild"].pk])


def test_filters_by_fiscal_year_grade_and_guidance_level(world, ward):
    nurse = _client("nurse@a.example")

    def links(query: str) -> set[str]:
        """The records listed for ``query``, by id."""
        rows = _list_rows(nurse.get(f"/checkups/results/?{query}").content.decode())
        return set(re.findall(r"/checkups/results/(\d+)/", rows))

    def pk(key: str) -> str:
        return str(ward[key].pk)

    assert links("") == {pk("before"), pk("record"), pk("mild")}
    assert links("year=2024") == {pk("before")}
    assert links("year=2025&grade=C") == {pk("record")}
    assert links("grade=B") == {pk("mild")}
    guidance = _judgement(world, ward["record"]).guidance_level
    assert guidance  # the employee (male, 49, waist 92, two risks) has a 保健指導 level
    assert pk("record") in links(f"guidance={guidance}") and pk("mild") not in links(f"guidance={guidance}")
    assert links("year=x&grade=Z&guidance=nonsense&program=x") == links("")  # nonsense narrows nothing
    # 特定健診 apart from the employer's checkups of the same people, each row saying which it is
    with tenant_context(world.tenant_a):
        specific = checkup_record_save(member=ward["record"].member, exam_date=dt.date(2025, 9, 1), program="specific",
                                       values=VALUES)  # fmt: skip
        checkup_judge(record=specific)
    assert links("year=2025&program=specific") == {str(specific.pk)}
    assert links("year=2025&program=regular") == {pk("record"), pk("mild")}
    rows = _list_rows(nurse.get("/checkups/results/?year=2025").content.decode())
    assert rows.count('<td data-testid="program">特定健診</td>') == 1
    assert rows.count('<td data-testid="program">定期健診</td>') == 2


def test_pages_of_the_list(world, ward, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    nurse = _client("nurse@a.example")
    first = nurse.get("/checkups/results/").content.decode()
    assert "1 / 2 ページ（全 3 件）" in first and f"/checkups/results/{ward['before'].pk}/" not in first
    second = nurse.get("/checkups/results/?page=2").content.decode()
    assert f"/checkups/results/{ward['before'].pk}/" in second
    assert f"/checkups/results/{ward['mild'].pk}/" not in _list_rows(second)
    filtered = nurse.get("/checkups/results/?year=2025&grade=C").content.decode()
    assert "全 1 件" in filtered


def test_hr_and_employees_get_404_and_no_menu_link(world, ward):
    nurse = _client("nurse@a.example")
    assert nurse.get(f"/checkups/results/{ward['record'].pk}/").status_code == 200
    hr = _client("hr@a.example")  # checkup.view_conclusion only, for the whole tenant
    assert "/checkups/results/" not in hr.get("/").content.decode()
    assert hr.get("/checkups/results/").status_code == 404
    assert hr.get(f"/checkups/results/{ward['record'].pk}/").status_code == 404
    employee = _client("member@a.example", TEST_PASSWORD)
    assert employee.get("/checkups/results/").status_code == 404
    assert employee.get(f"/checkups/results/{ward['record'].pk}/").status_code == 404  # even their own


def test_another_tenants_record_is_404_and_an_insurer_reads_its_own(world, ward):
    """Tenant B is a health-insurance association: its 保健師 reads its own people for 保健指導, and the ids of
    either tenant are 404 to the other."""
    with tenant_context(world.tenant_b):
        user_create(email="hoken@b.example", role=Role.HEALTH_STAFF, tenant=world.tenant_b, password=STAFF_PASSWORD,
                    member=world.roster_b[2])  # fmt: skip
        label_grant_create(office=Office.objects.get(), target_kind="employee", target="B2", labels=["health_staff"],
                           scope_="tenant", acting_user=world.outsider_b)  # fmt: skip
        theirs = _record(world.roster_b[3], dt.date(2025, 6, 1))
    insurer = _client("hoken@b.example")
    assert f"/checkups/results/{theirs.pk}/" in insurer.get("/checkups/results/").content.decode()
    page = insurer.get(f"/checkups/results/{theirs.pk}/").content.decode()
    assert "142 mmHg" in _text(page) and "就業判定" not in page
    assert insurer.get(f"/checkups/results/{ward['record'].pk}/").status_code == 404
    assert f"/checkups/results/{ward['record'].pk}/" not in insurer.get("/checkups/results/").content.decode()
    nurse = _client("nurse@a.example")
    assert nurse.get(f"/checkups/results/{theirs.pk}/").status_code == 404
    assert not AuditEvent.objects.filter(action="checkup.viewed", actor_id=ward["nurse"].pk).exists()  # nothing read


def test_a_physician_has_the_page_too(world, ward):
    with tenant_context(world.tenant_a):
        _staff(world, "doc", Role.PHYSICIAN, "physician", "tenant")
    doc = _client("doc@a.example")
    assert "/checkups/results/" in doc.get("/").content.decode()
    rows = _list_rows(doc.get("/checkups/results/").content.decode())
    assert "総務 花子" in rows and "他 支店" in rows  # the whole tenant


def test_health_staff_see_the_physicians_opinion_in_force_read_only(world, ward):
    """The 保健師 supports the person after the physician's 就業判定 (保健指導, 事後措置): the detail shows the
    opinion in force and the follow-up's state, never a form to sign one."""
    from checkups.services import checkup_corrections_keep, follow_up_visit_record, physician_opinion_record

    nurse, record = _client("nurse@a.example"), ward["record"]
    page = nurse.get(f"/checkups/results/{record.pk}/").content.decode()
    assert "産業医の就業判定はまだありません。" in page
    with tenant_context(world.tenant_a):
        doc = _staff(world, "doc", Role.PHYSICIAN, "physician", "tenant")
        physician_opinion_record(record=record, fitness="normal", follow_up="recheck", opinion="減量を指導。",
                                 restrictions=[], acting_user=doc)  # fmt: skip
        physician_opinion_record(record=record, fitness="restricted", follow_up="recheck", opinion="残業を控える。",
                                 restrictions=["no_overtime"], acting_user=doc)  # fmt: skip
    opinion = _text(nurse.get(f"/checkups/results/{record.pk}/").content.decode().split('data-testid="opinion"')[1]
                    .split("</section>")[0])  # fmt: skip
    assert "就業判定 就業制限" in opinion and "時間外労働の制限" in opinion  # the newest opinion, in words
    assert "残業を控える。" in opinion and "減量を指導。" not in opinion
    assert "事後措置 再検査 未受診" in opinion
    with tenant_context(world.tenant_a):
        follow_up_visit_record(record=record, visited_on=dt.date(2025, 7, 1), acting_user=ward["hr"])
    page = nurse.get(f"/checkups/results/{record.pk}/").content.decode()
    assert "受診済み（2025-07-01）" in _text(page.split('data-testid="opinion"')[1])
    assert "署名して記録する" not in page and 'name="fitness"' not in page
    assert 'data-testid="stale-opinion"' not in page
    with tenant_context(world.tenant_a):  # a corrected file replaces the values the physician signed on
        checkup_corrections_keep(record_ids=[record.pk])
    page = nurse.get(f"/checkups/results/{record.pk}/").content.decode()
    note = page.split('data-testid="stale-opinion"')[1].split("</p>")[0]
    assert "その後に訂正された値より前に署名されたもの" in note and "産業医が確認し直しています" in note
    assert "就業制限" in _text(page.split('data-testid="opinion"')[1])  # still the opinion in force meanwhile
