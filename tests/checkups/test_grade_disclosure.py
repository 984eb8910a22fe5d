"""健診の集計 across views: HR reading the page before and after one person's checkup arrives (or one
person is judged again, or moves) must not learn that person's grade from the difference."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

from accounts.services import member_create
from checkups.models import GradeSnapshot, Judgement
from checkups.services import checkup_judge, checkup_record_save
from tenants.context import tenant_context
from tests.checkups.test_checkup_pages import _client, clinic  # noqa: F401  (the fixture)

HEALTHY = {"systolic": D("110"), "diastolic": D("70"), "ldl": D("100"), "hba1c": D("5.2")}
ILL = {"systolic": D("185"), "diastolic": D("112"), "ldl": D("100"), "hba1c": D("5.2")}


def _person(world, number: str, values: dict, *, department=None) -> Judgement:
    person = member_create(
        employee_number=number, name=f"集計 {number}", office=world.office_a,
        department=department or world.department_a, sex="female", birth_date=dt.date(1985, 1, 1),
    )  # fmt: skip
    record = checkup_record_save(member=person, exam_date=dt.date(2025, 7, 1), program="regular", values=values)
    return checkup_judge(record=record)


def _sales(client) -> tuple[int, list[int], str]:
    """営業部's 人数, its A–E counts and the as-of note, as HR's page shows them."""
    page = client.get("/checkups/dashboard/").content.decode()
    row = page.split("<td>営業部</td>", 1)[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>", " ", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    note = re.search(r'data-testid="grades-as-of">(.*?)</small>', row, re.S)
    return int(cells[0].split()[0]), [int(c) for c in cells[1:6]], note.group(1) if note else ""


def test_one_more_checkup_does_not_show_in_the_grades_until_five_people_changed(world, clinic):  # noqa: F811
    with tenant_context(world.tenant_a):
        for i in range(5):
            _person(world, f"G-{i}", HEALTHY)
    hr = _client("hr@a.example")
    people, before, note = _sales(hr)
    assert people == 6 and sum(before) == 6 and not note  # the employee and five more, all judged

    with tenant_context(world.tenant_a):
        assert _person(world, "G-5", ILL).overall in "DE"  # one person's checkup arrives, graded badly
    people, after, note = _sales(hr)
    assert people == 7  # the group has grown by one: not a secret (HR sees who had a checkup)
    assert after == before, "the difference would be G-5's grade"
    assert "時点の6人" in note

    with tenant_context(world.tenant_a):  # four more: five people changed since the counts were shown
        for i in range(6, 10):
            _person(world, f"G-{i}", HEALTHY)
    people, latest, note = _sales(hr)
    assert people == 11 and sum(latest) == 11 and not note
    assert latest[0] == before[0] + 4 and sum(latest[3:]) == sum(before[3:]) + 1


def test_a_new_judgement_or_a_move_of_one_person_leaves_the_grades_as_shown(world, clinic):  # noqa: F811
    from tenants.services import department_create

    with tenant_context(world.tenant_a):
        judged = [_person(world, f"G-{i}", HEALTHY) for i in range(6)]
    hr = _client("hr@a.example")
    people, before, _ = _sales(hr)
    assert people == 7 and before[0] >= 6

    with tenant_context(world.tenant_a):
        Judgement.objects.filter(pk=judged[0].pk).update(overall="E")  # judged again (e.g. corrected)
        moved = judged[1].record.member
        moved.department = department_create(office=world.office_a, name="開発部")
        moved.save()
    people, after, note = _sales(hr)
    assert people == 6  # one moved out
    assert after == before and "時点の7人" in note  # neither the new E nor the mover's grade shows

    # English: the note reads in the page's language
    hr.cookies["django_language"] = "en"
    page = hr.get("/checkups/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "as of" in page and "時点" not in page


def test_snapshots_keep_no_grade_of_anyone(world, clinic):  # noqa: F811
    with tenant_context(world.tenant_a):
        for i in range(5):
            _person(world, f"G-{i}", HEALTHY)
    _sales(_client("hr@a.example"))
    with tenant_context(world.tenant_a):
        snapshot = GradeSnapshot.objects.get()
    assert snapshot.people == 6 and sum(snapshot.grades.values()) == 6
    digests = list(snapshot.members.values())
    assert len(digests) == 6 and all(re.fullmatch(r"[0-9a-f]{16}", d) for d in digests)
    assert len(set(digests)) == 6  # keyed per person: five A grades do not share one value
