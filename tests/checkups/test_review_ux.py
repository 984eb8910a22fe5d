"""The 就業判定 pages as a newcomer found them: an edit opens with the opinion in force, the deadline and
who the person is are on the page, signed records can be found again, a contradictory form is refused,
the employee reads a proper sentence, HR's 判定待ち is the physician's queue, and odd requests are 404s."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from accounts.services import member_create
from audit.models import AuditEvent
from checkups import selectors
from checkups.models import CheckupRecord, PhysicianOpinion
from checkups.services import checkup_judge, checkup_record_save, physician_opinion_record
from healthapp.errors import AppError
from tenants.context import tenant_context
from tenants.services import office_create
from tests.checkups.test_followups import STAFF_PASSWORD, _staff
from tests.conftest import TEST_PASSWORD, log_in

EXAM = dt.date(2025, 5, 20)
GRADE_C = {"systolic": D("142"), "diastolic": D("88"), "hdl": D("38"), "ldl": D("125"), "hba1c": D("5.8")}
GRADE_B = {"systolic": D("135"), "ldl": D("100")}  # B, and no guidance level (no birth date on the roster)
TWIN_NAME = "山田 太郎"


def _record(member, values=GRADE_C, exam_date=EXAM) -> CheckupRecord:
    record = checkup_record_save(member=member, exam_date=exam_date, program="regular", values=values)
    checkup_judge(record=record)
    return record


@pytest.fixture
def ward(world):
    """In 営業部: two people of the same name (C), the demo employee (C) and someone graded B; in 札幌支店
    someone graded C. A physician for 営業部, one for the whole tenant, and HR for the whole tenant."""
    with tenant_context(world.tenant_a):
        patient = world.roster_a[0]  # member@a.example
        sales = {"office": world.office_a, "department": world.department_a}
        first = member_create(employee_number="E-101", name=TWIN_NAME, sex="male", birth_date=dt.date(1975, 6, 1),
                              **sales)  # fmt: skip
        second = member_create(employee_number="E-102", name=TWIN_NAME, sex="female",
                               birth_date=dt.date(1990, 1, 15), **sales)  # fmt: skip
        mild = member_create(employee_number="E-103", name="軽度 一郎", **sales)
        far = member_create(employee_number="O-1", name="他 部署", office=office_create(name="札幌支店"))
        return {
            "patient": _record(patient),
            "first": _record(first),
            "second": _record(second),
            "mild": _record(mild, GRADE_B),
            "far": _record(far),
            "doc": _staff(world, "doc", Role.PHYSICIAN, "physician", "department"),
            "doc_all": _staff(world, "docall", Role.PHYSICIAN, "physician", "tenant"),
            "hr": _staff(world, "hr", Role.HR_ADMIN, "hr_staff", "tenant"),
        }


def _client(email: str, password: str = STAFF_PASSWORD) -> Client:
    client = Client()
    assert log_in(client, email, password).status_code == 302
    return client


def _sign(client: Client, record: CheckupRecord, **fields) -> None:
    data = {
        "fitness": "restricted",
        "restrictions": ["no_overtime"],
        "follow_up": "detailed",
        "opinion": "残業は月20時間",
    }
    assert client.post(f"/checkups/review/{record.pk}/", {**data, **fields}).status_code == 302


def _row(html: str, marker: str) -> str:
    """The table row holding ``marker``."""
    return html.split(marker)[0].rsplit("<tr", 1)[1] + marker + html.split(marker, 1)[1].split("</tr>")[0]


def _opinion_form(html: str) -> str:
    return html.split('<form method="post" novalidate>', 1)[1].split("</form>")[0]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# --- 1. The review page: the opinion in force, the deadline, who the person is ------------------------


def test_an_edit_opens_with_the_opinion_in_force(world, ward):
    doc, record = _client("doc@a.example"), ward["patient"]
    blank = doc.get(f"/checkups/review/{record.pk}/").content.decode()
    assert " checked" not in _opinion_form(blank) and 'data-testid="prefilled"' not in blank
    _sign(doc, record, restrictions=["no_overtime", "fewer_night_shifts"], follow_up="consult", opinion="血圧を再測定")
    page = doc.get(f"/checkups/review/{record.pk}/").content.decode()
    form = _opinion_form(page)
    assert re.search(r'value="restricted"[^>]*checked', form)
    assert re.search(r'value="no_overtime"[^>]*checked', form)
    assert re.search(r'value="fewer_night_shifts"[^>]*checked', form)
    assert not re.search(r'value="shorter_hours"[^>]*checked', form)
    assert re.search(r'<option value="consult" selected>', form)
    assert "血圧を再測定</textarea>" in form
    assert 'data-testid="prefilled"' in page
    # Signing the form as it opens keeps every restriction: nothing is lost by an edit.
    fields = {"fitness": "restricted", "restrictions": ["no_overtime", "fewer_night_shifts"], "follow_up": "consult",
              "opinion": "血圧を再測定"}  # fmt: skip
    assert doc.post(f"/checkups/review/{record.pk}/", fields).status_code == 302
    with tenant_context(world.tenant_a):
        newest = PhysicianOpinion.objects.filter(record=record).order_by("-signed_at", "-pk").first()
        assert newest.restrictions == ["no_overtime", "fewer_night_shifts"]


def test_the_review_page_shows_the_legal_deadline(world, ward):
    doc, record = _client("doc@a.example"), ward["patient"]
    page = doc.get(f"/checkups/review/{record.pk}/").content.decode()
    deadline = page.split('data-testid="deadline"')[1].split("</p>")[0]
    assert "2025-08-20" in deadline and 'data-testid="overdue"' in deadline  # 3 months after 2025-05-20, passed
    _sign(doc, record)
    deadline = doc.get(f"/checkups/review/{record.pk}/").content.decode().split('data-testid="deadline"')[1]
    assert "2025-08-20" in deadline.split("</p>")[0] and 'data-testid="overdue"' not in deadline.split("</p>")[0]

    with tenant_context(world.tenant_a):
        today = timezone.localdate()
        fresh = _record(ward["patient"].member, exam_date=today)
    page = doc.get(f"/checkups/review/{fresh.pk}/").content.decode().split('data-testid="deadline"')[1]
    expected = selectors.opinion_deadline(today)
    assert f"{expected:%Y-%m-%d}" in page.split("</p>")[0] and 'data-testid="overdue"' not in page.split("</p>")[0]


def test_people_of_the_same_name_are_told_apart_in_the_queue_and_on_the_review_page(world, ward):
    doc = _client("doc@a.example")
    queue = doc.get("/checkups/review/").content.decode()
    first = _text(_row(queue, f'/checkups/review/{ward["first"].pk}/"'))
    second = _text(_row(queue, f'/checkups/review/{ward["second"].pk}/"'))
    assert TWIN_NAME in first and TWIN_NAME in second
    assert "社員番号 E-101・男性・受診時 49歳" in first  # the age at the checkup (born 1975-06-01, exam 2025-05-20)
    assert "社員番号 E-102・女性・受診時 35歳" in second
    review = _text(doc.get(f"/checkups/review/{ward['second'].pk}/").content.decode())
    assert "社員番号 E-102・女性・受診時 35歳" in review
    # the link itself still reads the name alone, and nothing of the person goes to the audit log
    assert re.search(rf'/checkups/review/{ward["first"].pk}/">{TWIN_NAME}</a>', queue)
    with tenant_context(world.tenant_a):
        # (a health read's random nonce is hex: it may hold "1975" by chance, and says nothing of anyone)
        logged = " ".join(
            str({k: v for k, v in e.details.items() if k != "nonce"}) + e.target_id for e in AuditEvent.objects.all()
        )
    assert "E-101" not in logged and "E-102" not in logged and TWIN_NAME not in logged and "1975" not in logged


# --- 2. Signed records can be found again ----------------------------------------------------------


def test_recently_signed_records_are_listed_newest_first_in_the_queues_scope(world, ward, monkeypatch):
    doc = _client("doc@a.example")
    assert 'href="/checkups/review/signed/"' in doc.get("/checkups/review/").content.decode()
    _sign(doc, ward["first"])
    _sign(doc, ward["second"], fitness="normal", restrictions=[], follow_up="none")
    with tenant_context(world.tenant_a):  # signed long ago, and one outside this physician's scope
        old = PhysicianOpinion.objects.create(record=ward["patient"], fitness="normal", signed_by=ward["doc"])
        PhysicianOpinion.objects.filter(pk=old.pk).update(signed_at=timezone.now() - dt.timedelta(days=31))
        PhysicianOpinion.objects.filter(record=ward["first"]).update(signed_at=timezone.now() - dt.timedelta(days=2))
        PhysicianOpinion.objects.create(record=ward["far"], fitness="normal", signed_by=ward["doc_all"])
    page = doc.get("/checkups/review/signed/").content.decode()
    table = page.split('data-testid="signed"')[1].split("</table>")[0]
    links = re.findall(r'href="/checkups/review/(\d+)/[?"]', table)  # (?next=: the way back to this list)
    # newest signature first; none signed over 30 days ago, none outside the physician's scope
    assert links == [str(ward["second"].pk), str(ward["first"].pk)]
    second = _text(_row(table, f"/checkups/review/{ward['second'].pk}/?"))
    assert "通常勤務" in second and "社員番号 E-102" in second and "C" in second
    with tenant_context(world.tenant_a):  # read like the queue: a health read naming the records shown
        event = AuditEvent.objects.filter(action="checkup.queue_viewed").order_by("-seq").first()
        assert event.actor_id == ward["doc"].pk and event.details["list"] == "signed"
        assert event.details["records"] == [ward["second"].pk, ward["first"].pk] and event.details["page"] == 1
    monkeypatch.setattr(selectors, "PAGE_SIZE", 1)
    second_page = doc.get("/checkups/review/signed/?page=2").content.decode()
    assert "2 / 2 ページ（全 2 件）" in second_page and f"/checkups/review/{ward['first'].pk}/?" in second_page
    assert _client("hr@a.example").get("/checkups/review/signed/").status_code == 404
    assert _client("member@a.example", TEST_PASSWORD).get("/checkups/review/signed/").status_code == 404


# --- 3. A contradictory form is refused ------------------------------------------------------------


@pytest.mark.parametrize("fitness", ["normal", "leave"])
def test_restriction_kinds_with_normal_work_or_leave_are_refused(world, ward, fitness):
    doc, record = _client("doc@a.example"), ward["patient"]
    response = doc.post(
        f"/checkups/review/{record.pk}/", {"fitness": fitness, "restrictions": ["no_overtime"], "follow_up": "none"}
    )
    assert response.status_code == 200
    assert "就業制限の内容は「就業制限」のときだけ選べます。" in response.content.decode()
    with tenant_context(world.tenant_a):
        assert not PhysicianOpinion.objects.filter(record=record).exists()
        with pytest.raises(AppError, match="就業制限の内容は"):
            physician_opinion_record(record=record, fitness=fitness, follow_up="none", opinion="",
                                     restrictions=["no_overtime"], acting_user=ward["doc"])  # fmt: skip
    missing = doc.post(f"/checkups/review/{record.pk}/", {"fitness": "restricted", "follow_up": "none"})
    assert "就業制限の内容を1つ以上選んでください。" in missing.content.decode()
    # Said at the restriction kinds, which are marked invalid: the page focuses the first of them.
    for page in (response.content.decode(), missing.content.decode()):
        first_invalid = page.split('aria-invalid="true"')[0].rsplit("<input", 1)[1]
        assert 'name="restrictions"' in first_invalid
        assert 'id="id_restrictions_error"' in page


# --- 4. The employee reads one proper sentence per follow-up -------------------------------------------


@pytest.mark.parametrize(
    ("kind", "sentence"),
    [("recheck", "産業医から、再検査を受けるよう意見が出ています。"),
     ("detailed", "産業医から、精密検査を受けるよう意見が出ています。"),
     ("consult", "産業医から、医療機関を受診するよう意見が出ています。")],
)  # fmt: skip
def test_the_employee_reads_one_sentence_per_follow_up(world, ward, settings, kind, sentence):
    _sign(_client("doc@a.example"), ward["patient"], fitness="normal", restrictions=[], follow_up=kind)
    employee = _client("member@a.example", TEST_PASSWORD)
    page = employee.get("/checkups/mine/").content.decode()
    advice = _text(page.split('data-testid="follow-up-advice">')[1].split("</p>")[0])
    assert advice == f"{sentence} 医療機関を受診したら、受診日を記録してください。"
    assert "受診勧奨を受ける" not in advice
    employee.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "have a See a doctor" not in employee.get("/checkups/mine/").content.decode()


# --- 5. HR's 判定待ち is what the physicians' queues hold -----------------------------------------------


def test_pending_for_hr_is_exactly_the_physicians_queue_and_the_rest_needs_no_opinion(world, ward):
    doc, hr = _client("docall@a.example"), _client("hr@a.example")
    _sign(doc, ward["first"])
    with tenant_context(world.tenant_a):  # corrected after signing: back to the physician
        checkup_record_save(member=ward["first"].member, exam_date=EXAM, program="regular",
                            values={**GRADE_C, "systolic": D("150")})  # fmt: skip

    def listed(url: str, pattern: str) -> set[int]:
        return {int(pk) for pk in re.findall(pattern, hr_or_doc[url].get(url).content.decode())}

    hr_or_doc = {"/checkups/review/": doc, "/checkups/conclusions/?show=pending": hr}
    queue = listed("/checkups/review/", r'href="/checkups/review/(\d+)/"')
    pending = listed("/checkups/conclusions/?show=pending", r'data-testid="follow-up-(\d+)"')
    assert pending == queue  # the tenant-wide physician's queue and tenant-wide HR agree
    assert ward["mild"].pk not in pending and ward["first"].pk in pending
    everything = hr.get("/checkups/conclusions/").content.decode()
    mild = _text(_row(everything, f'data-testid="follow-up-{ward["mild"].pk}"'))
    assert "判定不要" in mild and "判定待ち" not in mild
    waiting = _text(_row(everything, f'data-testid="follow-up-{ward["second"].pk}"'))
    assert "判定待ち" in waiting and "判定不要" not in waiting


# --- 6. Restrictions read in the form's order ----------------------------------------------------------


def test_restrictions_are_listed_in_the_forms_order(world, ward):
    doc, record = _client("doc@a.example"), ward["patient"]
    _sign(doc, record, restrictions=["fewer_night_shifts", "shorter_hours", "no_overtime"])
    in_order = "労働時間の短縮、時間外労働の制限、深夜業の回数の減少"
    conclusions = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert in_order in _row(conclusions, f'data-testid="follow-up-{record.pk}"')
    history = doc.get(f"/checkups/review/{record.pk}/").content.decode().split("これまでの判定")[1]
    assert in_order in history


# --- 7. Odd requests are 404s, not errors ----------------------------------------------------------------


def test_an_operator_gets_404_not_an_error(world, ward, operator):
    _user, client = operator
    record = ward["patient"]
    assert client.get("/checkups/mine/").status_code == 404
    assert client.get(f"/checkups/review/{record.pk}/").status_code == 404
    assert client.post(f"/checkups/mine/{record.pk}/follow-up/", {"visited_on": "2025-08-01"}).status_code == 404
    follow_up = client.post(f"/checkups/conclusions/{record.pk}/follow-up/", {"visited_on": "2025-08-01"})
    assert follow_up.status_code == 404
    for path in ("/checkups/review/", "/checkups/review/signed/", "/checkups/conclusions/", "/checkups/dashboard/"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize("year", ["²", "١٢", "2025x", "-1", "99999999999999999999"])
def test_a_strange_year_shows_the_latest_year(world, ward, year):
    page = _client("hr@a.example").get("/checkups/dashboard/", {"year": year})
    assert page.status_code == 200 and "健診の集計（2025年度）" in page.content.decode()


# --- 8. The conclusions read is logged without a dangling "checkup #" -----------------------------------


def test_the_conclusions_read_has_no_half_target_in_the_audit_viewer(world, ward):
    hr = _client("hr@a.example")
    hr.get("/checkups/conclusions/?show=pending")
    with tenant_context(world.tenant_a):
        event = AuditEvent.objects.get(action="checkup.conclusions_viewed")
    assert (event.target_type, event.target_id) == ("", "")
    assert event.details["show"] == "pending" and ward["second"].pk in event.details["records"]
    viewer = hr.get("/audit/", {"action": "checkup.conclusions_viewed"}).content.decode()
    row = viewer.split('data-action="checkup.conclusions_viewed"')[1].split("</tr>")[0]
    assert "#" not in _text(row).replace(f"#{ward['hr'].pk}", "")  # the actor's id, and no "checkup #"


def test_a_person_on_file_by_insurance_card_alone_is_described_as_insured_or_dependant():
    """An insurer's people often have no employee number: 本人 / 家族 says more than 「社員番号 —」, and the card
    itself stays with roster.manage (the physician's pages do not show it)."""
    import datetime as dt

    from django.template.loader import render_to_string

    from accounts.models import Member

    child = Member(insurance_symbol="健12", insurance_number="34567", relationship=Member.Relationship.FAMILY,
                   sex=Member.Sex.FEMALE, birth_date=dt.date(2010, 5, 1))  # fmt: skip
    text = render_to_string("checkups/_person.html", {"member": child, "exam_date": dt.date(2025, 6, 1)})
    assert "家族・女性・受診時 15歳" in text and "社員番号" not in text and "34567" not in text
    employee = Member(employee_number="E-1", sex=Member.Sex.MALE, birth_date=dt.date(1980, 1, 1))
    assert "社員番号 E-1・男性" in render_to_string(
        "checkups/_person.html", {"member": employee, "exam_date": dt.date(2025, 6, 1)}
    )
