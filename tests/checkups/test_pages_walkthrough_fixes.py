"""What a newcomer's walkthrough of the checkup pages found, as the physician, HR and the employee see it:
the employee's own 就業判定 in full, the physician's own records in HR's 判定待ち, a refused visit date shown
at its row, English brackets in the correction history, trend labels that do not collide, the way back
from the review page, and one way of writing dates."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from itertools import pairwise

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from accounts.services import member_create
from checkups import selectors
from checkups.charts import trend_svg
from checkups.models import FollowUpVisit
from checkups.services import checkup_corrections_keep, checkup_judge, checkup_record_save
from tenants.context import tenant_context
from tests.checkups.test_followups import STAFF_PASSWORD, _staff
from tests.conftest import TEST_PASSWORD, log_in

# graded C: in the physician's queue
VALUES = {"waist": D("92"), "bmi": D("26.1"), "weight": D("78.5"), "systolic": D("142"), "diastolic": D("88"),
          "hdl": D("38"), "ldl": D("125"), "hba1c": D("5.8")}  # fmt: skip


def _record(member, exam_date: dt.date, values=VALUES):
    record = checkup_record_save(member=member, exam_date=exam_date, program="regular", values=values,
                                 questionnaire={"hours_since_meal": "12"})  # fmt: skip
    checkup_judge(record=record)
    return record


@pytest.fixture
def site(world):
    """The demo employee (営業部) with checkups in 2024 and 2025, a physician for 営業部 who is an employee of
    営業部 too, and HR for the whole tenant."""
    with tenant_context(world.tenant_a):
        patient = world.roster_a[0]  # member@a.example
        patient.sex, patient.birth_date = "male", dt.date(1975, 6, 1)
        patient.save()
        earlier, record = _record(patient, dt.date(2024, 5, 20)), _record(patient, dt.date(2025, 5, 20))
        doc = _staff(world, "doc", Role.PHYSICIAN, "physician", "department")
        hr = _staff(world, "hr", Role.HR_ADMIN, "hr_staff", "tenant")
    return {"record": record, "earlier": earlier, "doc": doc, "hr": hr}


def _client(email: str, password: str = STAFF_PASSWORD, language: str = "") -> Client:
    client = Client()
    assert log_in(client, email, password).status_code == 302
    if language:
        client.cookies["django_language"] = language
    return client


def _sign(client: Client, record, **fields):
    data = {"fitness": "restricted", "restrictions": ["no_overtime", "no_business_trips"], "follow_up": "detailed",
            "opinion": "残業は月20時間まで"}  # fmt: skip
    response = client.post(f"/checkups/review/{record.pk}/", {**data, **fields})
    assert response.status_code == 302
    return response


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _section(html: str, marker: str, end: str) -> str:
    return html.split(marker, 1)[1].split(end, 1)[0]


# --- 1. The employee's own 就業判定 ------------------------------------------------------------------


def test_the_employee_reads_the_restriction_kinds_of_their_own_opinion(world, site):
    _sign(_client("doc@a.example"), site["record"])
    mine = _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()
    opinion = _text(_section(mine, 'data-testid="opinion"', "</p>"))
    assert "就業制限" in opinion and "受診勧奨" not in opinion and "精密検査" in opinion
    assert "時間外労働の制限、出張の制限" in opinion  # what HR reads of it, the person reads too, listed as Japanese is
    english = _client("member@a.example", TEST_PASSWORD, "en").get("/checkups/mine/").content.decode()
    assert "Restrictions: No overtime, No business trips" in _text(english)
    assert "no_overtime" not in mine and "残業は月20時間まで" not in mine  # the physician's words stay with them


def test_the_employee_is_told_when_the_physician_is_checking_their_opinion_again(world, site):
    doc, employee = _client("doc@a.example"), _client("member@a.example", TEST_PASSWORD)
    record = site["record"]
    _sign(doc, record)
    assert 'data-testid="recheck"' not in employee.get("/checkups/mine/").content.decode()
    with tenant_context(world.tenant_a):  # the provider corrects the values after the signature
        _record(record.member, record.exam_date, {**VALUES, "systolic": D("168")})
    mine = employee.get("/checkups/mine/").content.decode()
    section = _section(mine, 'data-testid="results-2025"', "<h2>")
    assert "産業医がこの就業判定を確認し直しています" in section  # as HR's 訂正あり・再確認
    assert 'data-testid="recheck"' not in _section(mine, 'data-testid="results-2024"', "</section>")
    _sign(doc, record)  # confirmed again
    assert 'data-testid="recheck"' not in employee.get("/checkups/mine/").content.decode()


# --- 2. The physician's own records -----------------------------------------------------------------


def test_hr_is_told_which_share_of_the_pending_records_is_a_physicians_own(world, site):
    doc = site["doc"]
    with tenant_context(world.tenant_a):
        own = _record(doc.member, dt.date(2025, 6, 2))  # graded C: waiting for an opinion
    hr = _client("hr@a.example")
    pending = hr.get("/checkups/conclusions/?show=pending").content.decode()
    assert f'data-testid="follow-up-{own.pk}"' in pending  # HR's 判定待ち holds it…
    note = _text(_section(pending, 'data-testid="physicians-own"', "</p>"))
    assert "判定待ちのうち 1 件は産業医本人の健診です" in note  # …and says why no queue shows it
    assert "うち 1 件は、判定できる別の産業医がいない" in note  # the only physician of 営業部 is the person
    assert doc.member.name not in note and doc.member.employee_number not in note  # a count, nobody named
    queue = _client("doc@a.example").get("/checkups/review/").content.decode()
    assert f"/checkups/review/{own.pk}/" not in queue
    assert "ご自身の健診はこの一覧に表示されません" in _text(queue)
    with tenant_context(world.tenant_a):  # a second physician for the whole tenant can sign it
        _staff(world, "doc2", Role.PHYSICIAN, "physician", "tenant")
    page = hr.get("/checkups/conclusions/").content.decode()
    assert "判定待ちのうち 1 件は産業医本人の健診です" in _text(page)
    assert 'data-testid="physicians-own-unassigned"' not in page


def test_no_note_when_no_physician_has_a_pending_record(world, site):
    page = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert 'data-testid="physicians-own"' not in page


# --- 3. A refused visit date --------------------------------------------------------------------------


def test_a_refused_visit_date_is_shown_beside_its_row_and_kept_in_the_field(world, site):
    record = site["record"]
    _sign(_client("doc@a.example"), record)  # asks for a 精密検査
    hr = _client("hr@a.example")
    tomorrow = f"{timezone.localdate() + dt.timedelta(days=1):%Y-%m-%d}"
    response = hr.post(f"/checkups/conclusions/{record.pk}/follow-up/",
                       {"visited_on": tomorrow, "show": "follow_up", "page": "1"})  # fmt: skip
    assert response.status_code == 200  # the page again, not a redirect that loses the date
    page = response.content.decode()
    cell = _section(page, f'data-testid="follow-up-{record.pk}"', "</td>")
    assert "受診日に未来の日付は指定できません。" in cell
    assert re.search(rf'name="visited_on"[^>]*value="{tomorrow}"', cell)
    top = _text(_section(page, 'data-testid="row-error"', "</div>"))
    assert f"社員番号 {record.member.employee_number}" in top and "2025-05-20" in top  # which row, by what is shown
    assert '<option value="follow_up" selected>' in page  # the same narrowing as before
    mistyped = hr.post(f"/checkups/conclusions/{record.pk}/follow-up/", {"visited_on": "2025-13-40"})
    cell = _section(mistyped.content.decode(), f'data-testid="follow-up-{record.pk}"', "</td>")
    assert "受診日を正しく入力してください。" in cell and 'value="2025-13-40"' in cell
    with tenant_context(world.tenant_a):
        assert not FollowUpVisit.objects.filter(record=record).exists()
    ok = hr.post(f"/checkups/conclusions/{record.pk}/follow-up/", {"visited_on": "2025-07-01"})
    assert ok.status_code == 302  # a good date still goes back to the list


def test_the_employee_sees_a_refused_date_at_their_own_checkup(world, site):
    record = site["record"]
    _sign(_client("doc@a.example"), record)
    employee = _client("member@a.example", TEST_PASSWORD)
    response = employee.post(f"/checkups/mine/{record.pk}/follow-up/", {"visited_on": "2025-05-01"})
    assert response.status_code == 200
    block = _section(response.content.decode(), f'data-testid="follow-up-{record.pk}"', "</form>")
    assert "受診日は健診の受診日以降の日付を指定してください。" in block and 'value="2025-05-01"' in block


# --- 4. English brackets in the correction history ---------------------------------------------------


def test_the_correction_history_reads_with_english_brackets_in_english(world, site):
    record = site["record"]
    with tenant_context(world.tenant_a):
        record.results["systolic"]["interpretation"] = "H"
        record.save()
        checkup_corrections_keep(record_ids=[record.pk])  # as an import does before it replaces the results
        record.results["systolic"]["value"] = "151"
        record.save()
    page = _client("doc@a.example", language="en").get(f"/checkups/review/{record.pk}/").content.decode()
    table = _text(_section(page, 'data-testid="correction"', "</table>"))
    assert "142 (high)" in table and "151 (high)" in table
    assert not re.search("[（）]", table), table
    japanese = _client("doc@a.example").get(f"/checkups/review/{record.pk}/").content.decode()
    assert "142（高値）" in _text(_section(japanese, 'data-testid="correction"', "</table>"))


# --- 5. Trend labels that do not collide -------------------------------------------------------------

# Glyph widths of a common sans font (Arial, in em): the test measures labels its own way, not the chart's.
_EM = {".": 0.278, "-": 0.333, "/": 0.278}


def _labels(svg: str) -> list[tuple[str, float, float, float, float]]:
    """(text, left, top, right, bottom) of every <text> drawn, from its position, size and anchor."""
    boxes = []
    for attrs, text in re.findall(r"<text ([^>]*)>([^<]*)</text>", svg):
        get = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        x, y, size = float(get["x"]), float(get["y"]), float(get["font-size"])
        width = sum(_EM.get(char, 0.556) for char in text) * size
        left = {"start": x, "middle": x - width / 2, "end": x - width}[get.get("text-anchor", "start")]
        boxes.append((text, left, y - 0.716 * size, left + width, y))  # digits stand 0.716 em above the line
    return boxes


def _line(svg: str) -> list[tuple[float, float]]:
    points = re.search(r'<polyline[^>]* points="([^"]+)"', svg).group(1)
    return [tuple(map(float, pair.split(","))) for pair in points.split()]


def _crossed(box, line) -> bool:
    _text, left, top, right, bottom = box
    for (x0, y0), (x1, y1) in pairwise(line):
        for step in range(201):
            x, y = x0 + (x1 - x0) * step / 200, y0 + (y1 - y0) * step / 200
            if left <= x <= right and top <= y <= bottom:
                return True
    return False


def _overlapping(boxes) -> list[tuple[str, str]]:
    return [
        (a[0], b[0])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
    ]


CLOSE_IN_TIME = {
    # the demo employee: three seeded checkups in May, then the provider's CSV in September, the XML in October
    "september and october": [(dt.date(2023, 5, 12), 70.1), (dt.date(2024, 5, 18), 71.0),
                              (dt.date(2025, 5, 15), 71.8), (dt.date(2025, 9, 10), 72.5),
                              (dt.date(2025, 10, 20), 72.2)],
    # three within six weeks, the middle one far off: the first and the last once took the same spot
    "three in six weeks": [(dt.date(2023, 5, 1), 70.0), (dt.date(2025, 9, 1), 70.0), (dt.date(2025, 9, 20), 75.0),
                           (dt.date(2025, 10, 10), 70.2)],
    "wide values side by side": [(dt.date(2024, 5, 1), 101.5), (dt.date(2025, 5, 1), 103.5),
                                 (dt.date(2025, 8, 7), 102.5), (dt.date(2025, 9, 25), 102.5)],
}  # fmt: skip


@pytest.mark.parametrize("points", CLOSE_IN_TIME.values(), ids=CLOSE_IN_TIME.keys())
def test_trend_labels_of_checkups_close_in_time_do_not_collide(points):
    svg = str(trend_svg(points, title="体重", unit="kg"))
    boxes = _labels(svg)
    assert _overlapping(boxes) == [], boxes
    values = [box for box in boxes if re.fullmatch(r"[\d.]+", box[0])]
    assert values[0][0] == f"{points[-1][1]:g}"  # the newest value is always written
    assert [box[0] for box in values if _crossed(box, _line(svg))] == []  # nor does the line run through one
    # every value left unwritten is still in its point's tooltip
    assert sorted(re.findall(r"<title>[\d-]+: ([\d.]+)</title>", svg)) == sorted(f"{v:g}" for _d, v in points)


def test_both_values_of_september_and_october_are_written():
    svg = str(trend_svg(CLOSE_IN_TIME["september and october"], title="体重"))
    written = {box[0] for box in _labels(svg)}
    assert {"72.5", "72.2"} <= written  # one above its point, one below: both readable


# --- 6. The way back from the review page -------------------------------------------------------------


def test_the_review_page_leads_back_to_the_queue_page_it_was_opened_from(world, site, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 1)
    doc = _client("doc@a.example")
    second = doc.get("/checkups/review/?page=2").content.decode()  # oldest first: 2025 is on page 2
    link = re.search(rf'href="(/checkups/review/{site["record"].pk}/[^"]*)"', second).group(1).replace("&amp;", "&")
    review = doc.get(link).content.decode()
    back = re.search(r'<a href="([^"]+)" data-testid="back">([^<]+)</a>', review)
    assert back.group(1) == "/checkups/review/?page=2" and "就業判定の待ち一覧" in back.group(2)
    signed = doc.post(link, {"fitness": "normal", "follow_up": "none", "opinion": ""})
    assert signed.status_code == 302 and signed["Location"] == "/checkups/review/?page=2"
    # from the first page, and from the list of signatures, the way back is that list
    first = doc.get("/checkups/review/").content.decode()
    assert f'href="/checkups/review/{site["earlier"].pk}/"' in first
    plain = doc.get(f"/checkups/review/{site['earlier'].pk}/").content.decode()
    assert re.search(r'<a href="/checkups/review/" data-testid="back">', plain)
    listed = doc.get("/checkups/review/signed/").content.decode()
    link = re.search(rf'href="(/checkups/review/{site["record"].pk}/[^"]*)"', listed).group(1).replace("&amp;", "&")
    back = re.search(r'<a href="([^"]+)" data-testid="back">([^<]+)</a>', doc.get(link).content.decode())
    assert back.group(1) == "/checkups/review/signed/" and "最近署名した就業判定" in back.group(2)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/checkups/review/", "/accounts/logout/", "/checkups/review/?page=x",
     "/checkups/review/?page=2&next=//evil.example/", "javascript:alert(1)"],
)  # fmt: skip
def test_the_way_back_goes_nowhere_but_the_physicians_lists(world, site, target):
    doc = _client("doc@a.example")
    record = site["record"]
    review = doc.get(f"/checkups/review/{record.pk}/", {"next": target}).content.decode()
    assert re.search(r'<a href="/checkups/review/" data-testid="back">', review)
    signed = doc.post(f"/checkups/review/{record.pk}/", {"fitness": "normal", "follow_up": "none", "next": target})
    assert signed.status_code == 302 and signed["Location"] == "/checkups/review/"


# --- 7. Dates, one way --------------------------------------------------------------------------------


def test_checkup_pages_write_dates_year_month_day(world, site):
    with tenant_context(world.tenant_a):
        for i in range(5):  # a group big enough for the dashboard to publish its counts
            person = member_create(
                employee_number=f"G-{i}", name=f"集計 {i}", office=world.office_a, department=world.department_a,
                sex="female", birth_date=dt.date(1985, 1, 1),
            )  # fmt: skip
            _record(person, dt.date(2025, 7, 1), {"systolic": D("120"), "ldl": D("100")})
    dashboard = _client("hr@a.example").get("/checkups/dashboard/").content.decode()
    as_of = _text(_section(dashboard, 'data-testid="grades-as-of">', "</td>"))
    assert as_of.startswith(f"{timezone.localdate():%Y-%m-%d} 時点の"), as_of
    mine = _client("member@a.example", TEST_PASSWORD).get("/checkups/mine/").content.decode()
    assert "2025年度（2025-05-20・" in _text(mine)
    review = _client("doc@a.example").get(f"/checkups/review/{site['record'].pk}/").content.decode()
    assert "甲野 0（2025-05-20）" in _text(_section(review, "<h1>", "</h1>"))
