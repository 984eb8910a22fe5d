"""Checkup pages as their users see them: the employee's results and trends, the physician's queue
and 就業判定, HR's conclusions without lab values."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from django.db import connection
from django.http import Http404
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from accounts.services import label_grant_create, member_create, user_create
from audit.models import AuditEvent
from checkups.models import PhysicianOpinion
from checkups.services import checkup_judge, checkup_record_save, physician_opinion_record
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

STAFF_PASSWORD = TEST_PASSWORD + "!x"


def shows(page: str, value: str) -> bool:
    """``value`` as a value of its own anywhere in the HTML (text or attribute), not as digits inside a
    random token or an id in a URL."""
    return re.search(rf"(?<![\w./-]){re.escape(value)}(?!\w)", page) is not None


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
    assert "142 mmHg" in page and "収縮期血圧（mmHg）" in page and "mm[Hg]" not in page  # units as people write them
    assert "kg/m²" in page
    assert "<figcaption>HbA1c（NGSP・%）</figcaption>" in page  # not HbA1c（NGSP）（%）
    assert "2025年度" in page and "2024年度" in page
    assert 'class="grade grade-C"' in page and "生活習慣の見直し" in page
    assert page.count("<svg") >= 3 and "142" in page  # weight, BMI, blood pressure, … over two years
    with tenant_context(world.tenant_a):
        assert AuditEvent.objects.filter(action="checkup.viewed", actor_id=world.member_a.pk).count() == 2


def test_each_grade_is_explained_by_its_range_and_the_range_of_a(world, clinic, settings):
    """HDL 38 is C because it is under 40 (lower is worse); systolic 142 is C between 140 and 160."""
    client = _client("member@a.example", TEST_PASSWORD)
    table = client.get("/checkups/mine/").content.decode().split('data-testid="results-2025"')[1].split("</table>")[0]
    hdl = table.split("HDLコレステロール")[1].split("</tr>")[0]
    assert "C の範囲（35以上40未満）です。A（異常なし）は 40以上。" in hdl
    systolic = table.split("収縮期血圧")[1].split("</tr>")[0]
    assert "C の範囲（140以上160未満）です。A（異常なし）は 130未満。" in systolic
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/checkups/mine/").content.decode()
    assert "at least 35 and under 40" in english and "A (normal) is 40 or more" in english


def test_physician_queue_holds_only_records_in_scope(world, clinic):
    doc = _client("doc@a.example")
    queue = doc.get("/checkups/review/").content.decode()
    with tenant_context(world.tenant_a):  # the grades it shows are a read of those people's results
        event = AuditEvent.objects.get(action="checkup.queue_viewed")
        shown = list(clinic["record"].member.checkups.order_by("exam_date").values_list("pk", flat=True))
        details = {key: value for key, value in event.details.items() if key != "nonce"}  # audit's own salt
        assert event.actor_id == clinic["doc"].pk and details == {"page": 1, "records": shown}
    assert "甲野 0" in queue and "他 部署" not in queue  # department scope
    assert "2024-08-20" in queue  # deadline: 3 months after the 2024-05-20 exam
    assert doc.get(f"/checkups/review/{clinic['other'].pk}/").status_code == 404


def test_a_physician_never_judges_their_own_checkup(world, clinic):
    """The physician's own checkup, in their department scope and graded for review, stays out of their
    queue and their reach: another physician signs it."""
    doc = clinic["doc"]
    with tenant_context(world.tenant_a):
        own = checkup_record_save(member=doc.member, exam_date=dt.date(2025, 5, 21), program="regular", values=VALUES)
        checkup_judge(record=own)
    client = _client("doc@a.example")
    assert f"/checkups/review/{own.pk}/" not in client.get("/checkups/review/").content.decode()
    assert f"/checkups/review/{clinic['record'].pk}/" in client.get("/checkups/review/").content.decode()
    assert client.get(f"/checkups/review/{own.pk}/").status_code == 404
    signed = client.post(f"/checkups/review/{own.pk}/", {"fitness": "normal", "follow_up": "none", "opinion": ""})
    assert signed.status_code == 404
    with tenant_context(world.tenant_a):
        assert not PhysicianOpinion.objects.filter(record=own).exists()
        with pytest.raises(Http404):
            physician_opinion_record(record=own, fitness="normal", follow_up="none", opinion="", restrictions=[],
                                     acting_user=doc)  # fmt: skip


def test_an_insurer_reads_grades_but_has_no_fitness_for_work_to_confirm(world, clinic):
    """就業判定 is an employer's duty (労働安全衛生法66条の4): a 健保's staff get 健診の集計 without the
    就業判定 and follow-up columns, and no 就業判定の確認 at all."""
    from tenants.models import Office

    with tenant_context(world.tenant_b):  # tenant B is a health-insurance association
        insurer = user_create(email="kenpo@b.example", role=Role.INSURER_ADMIN, tenant=world.tenant_b,
                              password=STAFF_PASSWORD, member=world.roster_b[1])  # fmt: skip
        label_grant_create(office=Office.objects.get(), target_kind="employee", target="B1", labels=["hr_staff"],
                           scope_="tenant", acting_user=world.outsider_b)  # fmt: skip
    client = _client("kenpo@b.example")
    home = client.get("/").content.decode()
    assert "健診の集計" in home and "就業判定の確認" not in home
    assert client.get("/checkups/conclusions/").status_code == 404
    dashboard = client.get("/checkups/dashboard/").content.decode()
    assert "健診の集計" in dashboard and "就業判定済み" not in dashboard and "事後措置の受診率" not in dashboard
    # Nor any of it by a URL: a follow-up visit on a record, the physician's pages (even with the label).
    with tenant_context(world.tenant_b):
        record = checkup_record_save(member=world.roster_b[2], exam_date=dt.date(2025, 6, 1), program="specific",
                                     values=VALUES)  # fmt: skip
        label_grant_create(office=Office.objects.get(), target_kind="employee", target="B1", labels=["physician"],
                           scope_="tenant", acting_user=world.outsider_b)  # fmt: skip
    visit = client.post(f"/checkups/conclusions/{record.pk}/follow-up/", {"visited_on": "2025-07-01"})
    assert visit.status_code == 404
    assert client.get("/checkups/review/").status_code == 404
    assert client.get(f"/checkups/review/{record.pk}/").status_code == 404
    assert "就業判定" not in client.get("/").content.decode()
    employer = _client("hr@a.example")
    assert "就業判定済み" in employer.get("/checkups/dashboard/").content.decode()  # a company's HR still does
    assert employer.get("/checkups/conclusions/").status_code == 200 and insurer.tenant.kind == "insurer"


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
    with CaptureQueriesContext(connection) as captured:
        page = hr.get("/checkups/conclusions/").content.decode()
        hr.get("/checkups/dashboard/")
    assert "就業制限" in page and "受診勧奨" in page
    assert f'data-testid="employee-number">{record.member.employee_number}<' in page  # same names told apart
    assert not shows(page, "142") and not shows(page, "5.8")  # no lab values for HR
    # nor are they read from the database for HR's pages: no query of theirs selects the results
    read = [q["sql"] for q in captured.captured_queries if "checkups_checkuprecord" in q["sql"]]
    assert read and not [sql for sql in read if '"checkups_checkuprecord"."results"' in sql]
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
    assert not shows(page, "142")


def _sign(doc: Client, record, **fields) -> None:
    data = {
        "fitness": "restricted",
        "restrictions": ["no_overtime"],
        "follow_up": "detailed",
        "opinion": "残業は月20時間まで",
    }
    assert doc.post(f"/checkups/review/{record.pk}/", {**data, **fields}).status_code == 302


def _cells(html: str, row_marker: str) -> list[str]:
    """The text of each <td> in the table row holding ``row_marker``."""
    import re

    row = html.split(row_marker)[0].rsplit("<tr", 1)[1] + row_marker + html.split(row_marker, 1)[1].split("</tr>")[0]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_restrictions_read_as_words_for_hr_and_in_the_physicians_history(world, clinic):
    doc = _client("doc@a.example")
    record = clinic["record"]
    _sign(doc, record, restrictions=["no_overtime", "no_business_trips"])
    page = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    cells = _cells(page, "2025-05-20")
    assert cells[4] == "就業制限" and cells[6] == "精密検査"
    assert "時間外労働の制限" in cells[5] and "出張の制限" in cells[5]
    assert "no_overtime" not in page and "no_business_trips" not in page
    assert "残業は月20時間まで" not in page  # the opinion text stays with the physician
    history = doc.get(f"/checkups/review/{record.pk}/").content.decode().split("これまでの判定")[1]
    assert "就業制限" in history and "時間外労働の制限" in history and "出張の制限" in history
    assert "精密検査" in history and "残業は月20時間まで" in history
    assert "no_overtime" not in history


def test_restriction_labels_follow_the_catalogue_of_restrictions(world):
    opinion = PhysicianOpinion(restrictions=["no_overtime", "fewer_night_shifts", "retired_code"])
    assert opinion.restriction_labels == ["時間外労働の制限", "深夜業の回数の減少", "retired_code"]
    assert PhysicianOpinion(restrictions=[]).restriction_labels == []


def test_coded_answers_read_as_the_source_wrote_them(world, clinic):
    """尿糖 and 尿蛋白 are stored as MHLW answer codes (1 = −, 2 = ±); people read the symbols."""
    record = clinic["record"]
    with tenant_context(world.tenant_a):
        record = checkup_record_save(
            member=record.member, exam_date=record.exam_date, program="regular",
            values={**VALUES, "urine_sugar": D("1"), "urine_protein": D("2")},
        )  # fmt: skip
        checkup_judge(record=record)
    mine = _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()
    section = mine.split('data-testid="results-2025"')[1].split("</table>")[0]
    assert _cells(section, "<td>尿糖</td>")[1] == "−"
    assert _cells(section, "<td>尿蛋白</td>")[1] == "±"
    assert _cells(section, "<td>HbA1c（NGSP）</td>")[1] == "5.8 %"  # measured values stay numbers
    review = _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode()
    assert _cells(review, "<td>尿糖</td>")[1] == "−"
    assert _cells(review, "<td>尿蛋白</td>")[1] == "±"
    # Not graded A–E, yet judged by the MHLW values (± is 保健指導): the person is told what that means.
    assert _cells(section, "<td>尿蛋白</td>")[2] == "—"
    assert "保健指導" in _cells(section, "<td>尿蛋白</td>")[3]
    assert _cells(section, "<td>尿糖</td>")[3] == ""  # no grade, no MHLW value: nothing invented


def test_chart_values_are_written_as_the_table_writes_them(world, clinic):
    """BMI 22.0 is 22.0 on the chart as in the table, not 22."""
    with tenant_context(world.tenant_a):
        patient = clinic["record"].member
        checkup_record_save(member=patient, exam_date=dt.date(2025, 9, 1), program="regular",
                            values={**VALUES, "bmi": D("22.0"), "weight": D("70")})  # fmt: skip
    page = _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()
    chart = page.split('aria-label="BMI（')[1].split("</svg>")[0]
    assert chart.startswith("2024-05-20 26.1 kg/m²、2025-05-20 26.1 kg/m²、2025-09-01 22.0 kg/m²）")
    assert ">22.0</text>" in chart and "2025-09-01: 22.0</title>" in chart
    weight = page.split('aria-label="体重（')[1].split("</svg>")[0]
    assert "2025-09-01 70.0 kg" in weight  # weight in tenths, as the table


def test_trend_points_are_labelled_by_exam_date(world, clinic):
    with tenant_context(world.tenant_a):
        patient = clinic["record"].member
        for day in (dt.date(2025, 9, 1), dt.date(2026, 1, 15)):  # two more in fiscal year 2025
            checkup_record_save(member=patient, exam_date=day, program="regular", values=VALUES)
    svg = _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()
    chart = svg.split('aria-label="HbA1c（NGSP）（')[1].split("</svg>")[0]
    # the picture's text alternative reads the series, oldest first
    assert chart.startswith("2024-05-20 5.8 %、2025-05-20 5.8 %、2025-09-01 5.8 %、2026-01-15 5.8 %）")
    labels = [text for text in chart.split('text-anchor="middle">')[1:] if not text.startswith("5.8")]
    labels = [text.split("<")[0] for text in labels]
    # Every point carries its date and value; the axis labels the newest date, then each earlier one that
    # does not overlap the label after it (2025-05-20 is 45 px before 2025-09-01, a date is 56 px wide).
    titles = re.findall(r"<title>([\d-]+): ([\d.]+)</title>", chart)
    assert sorted(titles) == [(day, "5.8") for day in ("2024-05-20", "2025-05-20", "2025-09-01", "2026-01-15")]
    assert labels == ["2026-01-15", "2025-09-01", "2024-05-20"]  # dates as every checkup page writes them
    # and the points stand as far apart as the exams: a year, then 104 days, then 136 days
    xs = sorted(float(x) for x in re.findall(r'<circle cx="([\d.]+)"', chart))
    assert xs[1] - xs[0] > 3 * (xs[2] - xs[1]) and xs[3] - xs[2] > xs[2] - xs[1]


def test_dashboard_counts_each_person_once_by_their_latest_judged_record(world, clinic):
    """人数 and the grade columns agree when someone has several checkups in one fiscal year: each person
    is counted by their latest judged record (and its newest judgement)."""
    from checkups.models import CheckupRecord, Judgement

    with tenant_context(world.tenant_a):
        people = [clinic["record"].member]
        for i in range(4):
            people.append(member_create(
                employee_number=f"G-{i}", name=f"集計 {i}", office=world.office_a, department=world.department_a,
                sex="female", birth_date=dt.date(1985, 1, 1),
            ))  # fmt: skip
        healthy = {"systolic": D("110"), "diastolic": D("70"), "ldl": D("100"), "hba1c": D("5.2")}
        for person in people[1:]:
            first = checkup_record_save(member=person, exam_date=dt.date(2025, 6, 1), program="regular", values=VALUES)
            checkup_judge(record=first)
        # 集計 0: a recheck in the autumn, judged A; it is the one that counts.
        recheck = checkup_record_save(member=people[1], exam_date=dt.date(2025, 10, 1), program="regular",
                                      values=healthy)  # fmt: skip
        assert checkup_judge(record=recheck).overall == "A"
        # 集計 1: a later record not judged yet: the judged June record still counts.
        checkup_record_save(member=people[2], exam_date=dt.date(2025, 11, 1), program="regular", values=healthy)
        # 集計 2: the June record judged again; its newest judgement counts.
        newest = checkup_judge(record=CheckupRecord.objects.get(member=people[3]))
        Judgement.objects.filter(pk=newest.pk).update(overall="B")
        others = Judgement.objects.filter(record__member__in=people[2:]).exclude(pk=newest.pk)
        assert {j.overall for j in others} <= set("CDE")  # every other counted record is C–E
    doc = _client("doc@a.example")
    _sign(doc, recheck)  # an opinion on 集計 0's counted record
    page = _client("hr@a.example").get("/checkups/dashboard/").content.decode()
    cells = _cells(page, "<td>営業部</td>")
    # Fewer than five people in each grade class: the page gives each class's total, not its grades.
    people_count, (low, high), judged = int(cells[2]), cells[3:5], cells[5]
    assert people_count == 5
    assert (low, high) == ("計 2", "計 3"), cells  # every person once, not every record: A (集計 0's recheck)
    # and B (集計 2's newest judgement) against the three C–E records that count
    assert judged == "20%"  # one person of five has an opinion on the record that counts


def test_the_physician_sees_what_a_correction_changed_and_hr_still_sees_no_values(world, clinic):
    record = clinic["record"]  # 2025: systolic 142, 12 hours after a meal
    with tenant_context(world.tenant_a):
        checkup_record_save(
            member=record.member, exam_date=record.exam_date, program="regular",
            values={**VALUES, "systolic": D("151"), "hba1c": None}, questionnaire={"hours_since_meal": "2"},
        )  # fmt: skip
    page = _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode()
    table = page.split("結果の訂正履歴")[1].split("</table>")[0]
    assert _cells(table, "収縮期血圧") == ["収縮期血圧", "142", "151"]
    assert _cells(table, "HbA1c") == ["HbA1c（NGSP）", "5.8", "—"]  # a value the correction removed
    assert _cells(table, "採血時間（食後）") == ["採血時間（食後）", "12", "2"]
    assert "拡張期血圧" not in table  # unchanged items are not listed
    mine = _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()
    assert mine.count('data-testid="corrected"') == 1 and "に訂正されました" in mine
    conclusions = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert 'data-testid="recheck-' not in conclusions and not shows(conclusions, "151")  # no opinion yet


def test_a_correction_after_the_opinion_sends_the_record_back_to_the_physician(world, clinic):
    doc, record = _client("doc@a.example"), clinic["record"]
    _sign(doc, record)
    assert "2025-05-20" not in doc.get("/checkups/review/").content.decode()  # signed: off the queue
    assert 'data-testid="recheck-' not in _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    with tenant_context(world.tenant_a):
        checkup_record_save(
            member=record.member, exam_date=record.exam_date, program="regular",
            values={**VALUES, "systolic": D("168")}, questionnaire={"hours_since_meal": "12"},
        )  # fmt: skip
        checkup_judge(record=record)
    queue = doc.get("/checkups/review/").content.decode()
    row = queue.split("2025-05-20")[1].split("</tr>")[0]
    assert 'data-testid="recheck"' in row  # back on the queue, marked as a re-check
    page = doc.get(f"/checkups/review/{record.pk}/").content.decode()
    assert 'data-testid="stale-opinion"' in page and "訂正された値より前に署名" in page
    history = page.split('data-testid="judgement-history"')[1].split("</details>")[0]  # both judgements, newest first
    assert "判定の履歴（2）" in history and history.count("<tr><td>") == 2
    hr = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert f'data-testid="recheck-{record.pk}"' in hr and "就業制限" in hr  # the opinion in force, flagged
    assert not shows(hr, "168")
    _sign(doc, record, restrictions=["no_overtime", "no_business_trips"])  # the physician confirms again
    assert "2025-05-20" not in doc.get("/checkups/review/").content.decode()
    assert 'data-testid="stale-opinion"' not in doc.get(f"/checkups/review/{record.pk}/").content.decode()
    hr = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert f'data-testid="recheck-{record.pk}"' not in hr


def test_a_correction_to_normal_values_still_sends_a_signed_record_back_to_the_physician(world, clinic):
    """The opinion (say 就業制限) rests on values that are gone; with grade A now it must still be confirmed,
    not left in force with HR told forever that it awaits the physician."""
    doc, record = _client("doc@a.example"), clinic["record"]
    _sign(doc, record)
    normal = {"waist": D("80"), "bmi": D("22"), "weight": D("60"), "systolic": D("118"), "diastolic": D("70"),
              "hdl": D("60"), "ldl": D("100"), "hba1c": D("5.2")}  # fmt: skip
    with tenant_context(world.tenant_a):
        corrected = checkup_record_save(member=record.member, exam_date=record.exam_date, program="regular",
                                        values=normal, questionnaire={"hours_since_meal": "12"})  # fmt: skip
        judged = checkup_judge(record=corrected)
        assert judged.overall == "A", judged.grades
    row = doc.get("/checkups/review/").content.decode().split("2025-05-20")[1].split("</tr>")[0]
    assert 'data-testid="recheck"' in row
    _sign(doc, record)
    assert "2025-05-20" not in doc.get("/checkups/review/").content.decode()


@pytest.mark.parametrize(
    ("exam", "deadline"),
    [("2025-05-20", "2025-08-20"), ("2025-04-30", "2025-07-31"), ("2025-02-28", "2025-05-31"),
     ("2024-02-29", "2024-05-31"), ("2025-11-30", "2026-02-28"), ("2023-11-30", "2024-02-29"),
     ("2025-01-31", "2025-04-30"), ("2025-09-30", "2025-12-31")],
)  # fmt: skip
def test_the_opinion_deadline_is_counted_as_the_civil_code_counts_three_months(exam, deadline):
    from checkups.selectors import opinion_deadline

    assert opinion_deadline(dt.date.fromisoformat(exam)) == dt.date.fromisoformat(deadline)


def test_a_correction_before_any_opinion_only_keeps_the_record_waiting(world, clinic):
    record = clinic["record"]
    with tenant_context(world.tenant_a):
        checkup_record_save(member=record.member, exam_date=record.exam_date, program="regular",
                            values={**VALUES, "systolic": D("150")})  # fmt: skip
    row = _client("doc@a.example").get("/checkups/review/").content.decode().split("2025-05-20")[1].split("</tr>")[0]
    assert 'data-testid="recheck"' not in row  # in the queue as any unsigned record


def test_long_lists_come_a_page_at_a_time_and_a_follow_up_returns_to_its_page(world, clinic, monkeypatch):
    from checkups import selectors
    from checkups.models import CheckupRecord

    monkeypatch.setattr(selectors, "PAGE_SIZE", 1)
    doc, hr = _client("doc@a.example"), _client("hr@a.example")
    first = doc.get("/checkups/review/").content.decode()
    assert first.split("<tbody>")[1].split("</tbody>")[0].count("<tr>") == 1
    assert "1 / 2 ページ（全 2 件）" in first and "2024-05-20" in first and "2025-05-20" not in first  # oldest first
    second = doc.get("/checkups/review/?page=2").content.decode()
    assert "2 / 2 ページ" in second and "2025-05-20" in second and "2024-05-20" not in second
    assert "2 / 2 ページ" in doc.get("/checkups/review/?page=99").content.decode()  # out of range: the last page
    assert "1 / 2 ページ" in doc.get("/checkups/review/?page=x").content.decode()
    _sign(doc, clinic["record"])  # the 2025 record asks for a 精密検査
    with tenant_context(world.tenant_a):
        total = CheckupRecord.objects.count()  # HR sees every record of the tenant, newest exam first
    pending = hr.get("/checkups/conclusions/?show=pending").content.decode()
    assert 'href="?show=pending&amp;page=2"' in pending  # the pager keeps the filter
    pages = [hr.get(f"/checkups/conclusions/?page={n}").content.decode() for n in range(1, total + 1)]
    assert all(f"（全 {total} 件）" in page for page in pages)
    on = next(n for n, page in enumerate(pages, 1) if f'data-testid="follow-up-{clinic["record"].pk}"' in page)
    posted = hr.post(
        f"/checkups/conclusions/{clinic['record'].pk}/follow-up/", {"visited_on": "2025-08-01", "page": str(on)}
    )
    assert posted.status_code == 302 and posted["Location"] == f"/checkups/conclusions/?page={on}"


def test_results_read_in_the_catalogue_order_whatever_order_they_were_stored_in(world, clinic):
    record = clinic["record"]
    with tenant_context(world.tenant_a):
        backwards = dict(reversed(list({**VALUES, "height": D("170.2")}.items())))
        checkup_record_save(member=record.member, exam_date=record.exam_date, program="regular", values=backwards)
    for client, url, table in (
        (_client("member@a.example", TEST_PASSWORD), "/checkups/mine/", 'data-testid="results-2025"'),
        (_client("doc@a.example"), f"/checkups/review/{record.pk}/", 'data-testid="results"'),
    ):
        rows = client.get(url).content.decode().split(table)[1].split("</table>")[0]
        labels = re.findall(r"<tr><td>([^<]+)</td>", rows)
        assert labels[:4] == ["身長", "体重", "BMI", "腹囲"], (url, labels)


def test_hr_narrows_the_conclusions_to_what_needs_acting_on(world, clinic):
    doc, hr = _client("doc@a.example"), _client("hr@a.example")
    record, other = clinic["record"], clinic["other"]  # 2025 record of the employee; someone in 札幌支店
    _sign(doc, record)  # 精密検査 asked, not done yet

    def listed(show: str) -> set[int]:
        page = hr.get(f"/checkups/conclusions/?show={show}").content.decode()
        return {int(pk) for pk in re.findall(r'data-testid="follow-up-(\d+)"', page)}

    everything = listed("all")
    assert {record.pk, other.pk} <= everything and listed("nonsense") == everything
    assert listed("signed") == {record.pk} and listed("follow_up") == {record.pk}
    assert record.pk not in listed("pending") and other.pk in listed("pending")
    assert listed("recheck") == set()
    posted = hr.post(
        f"/checkups/conclusions/{record.pk}/follow-up/", {"visited_on": "2025-08-01", "show": "follow_up", "page": "1"}
    )
    assert posted["Location"] == "/checkups/conclusions/?show=follow_up&page=1"  # back where HR was
    assert listed("follow_up") == set() and listed("signed") == {record.pk}  # done: off the to-do list
    with tenant_context(world.tenant_a):
        checkup_record_save(member=record.member, exam_date=record.exam_date, program="regular",
                            values={**VALUES, "systolic": D("170")})  # fmt: skip
    assert listed("recheck") == {record.pk}
    page = hr.get("/checkups/conclusions/?show=recheck").content.decode()
    assert '<option value="recheck" selected>' in page


def test_the_queue_marks_deadlines_that_have_passed(world, clinic):
    from django.utils import timezone

    today = timezone.localdate()
    with tenant_context(world.tenant_a):
        fresh = checkup_record_save(member=clinic["record"].member, exam_date=today, program="regular", values=VALUES)
        checkup_judge(record=fresh)
    queue = _client("doc@a.example").get("/checkups/review/").content.decode()
    old_row = queue.split("2024-05-20")[1].split("</tr>")[0]
    new_row = queue.split(f"<td>{today:%Y-%m-%d}</td>")[1].split("</tr>")[0]
    assert 'data-testid="overdue"' in old_row and "期限超過" in old_row  # 2024-08-20 is long gone
    assert 'data-testid="overdue"' not in new_row  # three months from today


def test_hr_picks_the_fiscal_year_of_the_dashboard(world, clinic):
    hr = _client("hr@a.example")
    latest = hr.get("/checkups/dashboard/").content.decode()
    assert "健診の集計（2025年度）" in latest
    assert '<option value="2025" selected>' in latest and '<option value="2024">' in latest
    earlier = hr.get("/checkups/dashboard/?year=2024").content.decode()
    assert "健診の集計（2024年度）" in earlier and '<option value="2024" selected>' in earlier
    for wrong in ("1999", "x"):  # a year without checkups, or no year: the latest
        assert "健診の集計（2025年度）" in hr.get(f"/checkups/dashboard/?year={wrong}").content.decode()


def test_the_physician_sees_last_years_value_beside_each_result_and_that_read_is_audited(world, clinic):
    doc, record = _client("doc@a.example"), clinic["record"]  # 2025: systolic 142; 2024: 132
    page = doc.get(f"/checkups/review/{record.pk}/").content.decode()
    table = page.split('data-testid="results"')[1].split("</table>")[0]
    assert "前回（2024-05-20）" in table
    assert _cells(table, "収縮期血圧") == [
        "収縮期血圧",
        "142 mmHg",
        "C",
        "受診勧奨判定値に該当",  # (a low HDL reads the same: no "or above")
        "132 mmHg",
    ]  # now, grades, last year (with its unit, as this year's)
    with tenant_context(world.tenant_a):
        earlier = record.member.checkups.get(exam_date=dt.date(2024, 5, 20))
        viewed = AuditEvent.objects.filter(action="checkup.viewed", actor_id=clinic["doc"].pk)
        assert {event.target_id for event in viewed} == {str(record.pk), str(earlier.pk)}
    first = doc.get(f"/checkups/review/{earlier.pk}/").content.decode()
    assert "前回（" not in first.split('data-testid="results"')[1].split("</table>")[0]  # nothing before 2024


def test_the_physician_sees_the_providers_own_flag_beside_a_value(world, clinic):
    """An XML result keeps the interpretation flag its provider gave (H / L); the physician reads it in words."""
    record = clinic["record"]
    with tenant_context(world.tenant_a):
        record.results["systolic"]["interpretation"] = "H"
        record.save()
    page = _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode()
    flags = re.findall(r'data-testid="interpretation">（([^<]*)）', page)
    assert flags == ["健診機関の判定: 高値"]
    # The choices of the opinion form are named by a legend (a label "for" nothing names nothing).
    assert 'for=""' not in page and "<legend>就業判定</legend>" in page and "<legend>就業制限の内容</legend>" in page


def test_a_value_converted_from_jds_says_so_to_the_physician_and_the_employee(world, clinic):
    """HbA1c sent under an old JDS code is stored as NGSP (+0.4 %) with the code it came with: both pages name
    the value the provider wrote, so nobody takes 5.8 for what the file said."""
    record = clinic["record"]
    with tenant_context(world.tenant_a):
        record.results["hba1c"]["code"] = "3D045000001906202"  # JDS twin of 3D046000001906202 (NGSP)
        record.save()
    pages = [
        _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode(),
        _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode(),
    ]
    for page in pages:
        assert re.findall(r'data-testid="converted">（([^<]*)）', page) == ["JDS 5.4 から換算"]
    with tenant_context(world.tenant_a):
        record.results["hba1c"]["code"] = "3D046000001906202"  # NGSP as given: no note
        record.save()
    assert (
        'data-testid="converted"' not in _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode()
    )


def test_a_correction_of_the_providers_flag_alone_is_listed(world, clinic):
    from checkups.services import checkup_corrections_keep

    record = clinic["record"]  # 2025: systolic 142, no flag
    with tenant_context(world.tenant_a):
        checkup_corrections_keep(record_ids=[record.pk])  # as an import does before it replaces the results
        record.results["systolic"]["interpretation"] = "H"
        record.save()
    page = _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode()
    table = page.split("結果の訂正履歴")[1].split("</table>")[0]
    assert _cells(table, "収縮期血圧") == ["収縮期血圧", "142", "142（高値）"]


def test_judged_levels_and_fiscal_years_read_in_english_when_chosen(world, clinic, settings):
    doc = _client("doc@a.example")
    doc.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    review = doc.get(f"/checkups/review/{clinic['record'].pk}/").content.decode()
    assert "Intensive support" in review and "Meets the criteria" in review and "積極的支援" not in review
    assert "Intensive support" in doc.get("/checkups/review/").content.decode()
    employee = _client("member@a.example", TEST_PASSWORD)
    employee.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "FY2025" in employee.get("/checkups/mine/").content.decode()
    assert "2025年度" in _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()


def test_band_limits_are_written_as_the_criteria_write_them():
    """HbA1c C is 6.0 to 6.5: "6以上" would read as a whole number the criteria do not use."""
    from checkups import criteria, judgement
    from checkups.selectors import _range_text

    rules = criteria.load("uniform_grades_v1")
    band = next(b for b in judgement.bands_of("hba1c", rules) if b.grade == "C")
    assert _range_text(band) == "6.0以上6.5未満"


def test_trend_values_that_would_overlap_keep_the_newest_one_written():
    """A CSV in September and an XML in October: two points a few pixels apart, values nearly equal."""
    from checkups.charts import trend_svg

    svg = str(trend_svg([(dt.date(2021, 1, 1), 60.0), (dt.date(2025, 9, 1), 62.0), (dt.date(2025, 10, 1), 62.4)],
                        title="体重"))  # fmt: skip
    written = re.findall(r'text-anchor="middle"[^>]*>([\d.]+)<', svg)
    # 62 would sit on 62.4 above its point: it goes below it (tests/checkups/test_pages_walkthrough_fixes.py
    # checks the boxes), and stays in its point's tooltip as every value does
    assert written == ["62.4", "62", "60"]
    assert "<title>2025-09-01: 62</title>" in svg and '<text x="4"' not in svg  # no empty unit label
    # Values 12 px apart vertically would touch (10 px digits): one goes below its point, clear of the other.
    close = str(trend_svg([(dt.date(2021, 1, 1), 80.0), (dt.date(2025, 9, 1), 93.0), (dt.date(2025, 10, 1), 90.6)],
                          title="腹囲"))  # fmt: skip
    assert re.findall(r'text-anchor="middle"[^>]*>([\d.]+)<', close) == ["90.6", "93", "80"]
    # Each value is written over a white halo, so the line drawn through it never hides a digit.
    assert all('paint-order="stroke" stroke="#fff"' in t for t in re.findall(r"<text[^>]*>[\d.]+</text>", svg))


def test_english_pages_glue_values_with_english_punctuation(world, clinic):
    """The parts the templates put between values (brackets, the ・ separator) follow the language too."""
    review = f"/checkups/review/{clinic['record'].pk}/"
    pages = []
    for email, password, path in (("member@a.example", TEST_PASSWORD, "/checkups/mine/"),
                                  ("hr@a.example", STAFF_PASSWORD, "/checkups/dashboard/"),
                                  ("doc@a.example", STAFF_PASSWORD, review)):  # fmt: skip
        client = _client(email, password)
        client.cookies["django_language"] = "en"
        pages.append(client.get(path).content.decode())
    mine, dashboard = pages[:2]
    assert "FY2025 (2025-05-20 · Periodic checkup)" in mine and "Checkup statistics (FY2025)" in dashboard
    for page in pages:
        text = re.sub(r"<[^>]+>", "", page)
        assert not re.search("[（）・]", text), re.findall(".{20}[（）・].{20}", text)[:3]
