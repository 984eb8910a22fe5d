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
    note = re.search(r'data-testid="grades-as-of">(.*?)</td>', row, re.S)
    return int(cells[0].split()[0]), [int(c) for c in cells[1:6]], note.group(1) if note else ""


def test_one_more_checkup_does_not_show_in_the_grades_until_five_people_of_its_class_changed(world, clinic):  # noqa: F811
    with tenant_context(world.tenant_a):
        for i in range(5):
            _person(world, f"G-{i}", HEALTHY)
    hr = _client("hr@a.example")
    people, before, note = _sales(hr)
    assert people == 6 and sum(before) == 6 and "時点の6人" in note  # the employee and five more, all judged

    with tenant_context(world.tenant_a):
        assert _person(world, "G-5", ILL).overall in "DE"  # one person's checkup arrives, graded badly
    people, after, note = _sales(hr)
    assert people == 7  # the group has grown by one: not a secret (HR sees who had a checkup)
    assert after == before, "the difference would be G-5's grade"
    assert "時点の6人" in note

    with tenant_context(world.tenant_a):  # four healthy people: 判定不要 tells HR they are A or B, so the
        for i in range(6, 10):  # C–E columns would still move by G-5 alone
            _person(world, f"G-{i}", HEALTHY)
    assert _sales(hr)[1] == before

    with tenant_context(world.tenant_a):  # four more graded badly: five people of C–E changed, four of A–B
        for i in range(10, 14):
            _person(world, f"G-{i}", ILL)
    assert _sales(hr)[1] == before

    with tenant_context(world.tenant_a):  # and a fifth of A–B
        _person(world, "G-14", HEALTHY)
    people, latest, note = _sales(hr)
    assert people == 16 and sum(latest) == 16 and "時点の16人" in note
    assert latest[0] == before[0] + 5 and sum(latest[2:]) == sum(before[2:]) + 5


def test_five_healthy_arrivals_alone_update_the_counts(world, clinic):  # noqa: F811
    with tenant_context(world.tenant_a):
        for i in range(5):
            _person(world, f"G-{i}", HEALTHY)
    hr = _client("hr@a.example")
    before = _sales(hr)[1]
    with tenant_context(world.tenant_a):
        for i in range(5, 10):
            _person(world, f"G-{i}", HEALTHY)
    people, after, note = _sales(hr)
    assert people == 11 and after[0] == before[0] + 5 and after[1:] == before[1:] and "時点の11人" in note


def test_moving_people_between_departments_makes_no_group_that_differs_by_one_person(world, clinic):  # noqa: F811
    """The reviewer's attack: move P0–P4 to a new department and look, then P1–P5 to another and look; the
    two groups would differ by P0 and P5 alone. People stay where they were first published."""
    from tenants.services import department_create

    with tenant_context(world.tenant_a):
        people = [_person(world, f"P-{i}", ILL if i == 0 else HEALTHY).record.member for i in range(6)]
    hr = _client("hr@a.example")
    count, before, _ = _sales(hr)
    for name, movers in (("新1", people[0:5]), ("新2", people[1:6])):
        with tenant_context(world.tenant_a):
            department = department_create(office=world.office_a, name=name)
            for person in movers:
                person.department = department
                person.save()
        page = hr.get("/checkups/dashboard/").content.decode()
        assert f"<td>{name}</td>" not in page  # their checkups still count where they were published
        assert _sales(hr)[:2] == (count, before)


def test_a_new_judgement_of_one_person_leaves_the_grades_as_shown(world, clinic):  # noqa: F811
    with tenant_context(world.tenant_a):
        judged = [_person(world, f"G-{i}", HEALTHY) for i in range(6)]
    hr = _client("hr@a.example")
    people, before, _ = _sales(hr)
    assert people == 7 and before[0] >= 6

    with tenant_context(world.tenant_a):
        Judgement.objects.filter(pk=judged[0].pk).update(overall="E")  # judged again (e.g. corrected)
    people, after, note = _sales(hr)
    assert (people, after) == (7, before) and "時点の7人" in note

    # English: the note reads in the page's language
    hr.cookies["django_language"] = "en"
    page = hr.get("/checkups/dashboard/").content.decode()
    assert "as of" in page and "時点" not in page


def test_two_views_at_once_never_publish_counts_one_person_apart(world, clinic):  # noqa: F811
    """A view that read the records before a concurrent one published newer counts must not put its older
    counts back (they would differ from the newer ones by the people in between)."""
    from checkups.disclosure import Board

    with tenant_context(world.tenant_a):
        ids = [_person(world, f"G-{i}", HEALTHY).record.member_id for i in range(11)]
        Board(2025).shown({"x:": {m: "A" for m in ids[:5]}})
        late, early = Board(2025), Board(2025)  # both read the snapshot of people 0–4
        late.shown({"x:": {m: "A" for m in ids[:10]}})  # 5–9 added: published
        # early read another moment's group, 0–8 and 10: five changes from what it read, two from what
        # late published — publishing it would show the difference of person 9 and person 10
        shown = early.shown({"x:": {m: "A" for m in ids[:9] + ids[10:]}})
        assert shown["x:"].people == 10
        snapshot = GradeSnapshot.objects.get(group="x:")
        assert snapshot.people == 10 and str(ids[9]) in snapshot.members and str(ids[10]) not in snapshot.members


def test_snapshots_keep_no_grade_of_anyone(world, clinic):  # noqa: F811
    with tenant_context(world.tenant_a):
        for i in range(5):
            _person(world, f"G-{i}", HEALTHY)
    _sales(_client("hr@a.example"))
    with tenant_context(world.tenant_a):
        snapshot = GradeSnapshot.objects.get()
    assert snapshot.people == 6 and sum(snapshot.grades.values()) == 6
    states = list(snapshot.members.values())
    # the class of each grade (what 判定待ち shows HR anyway) and a keyed digest, not the grade
    assert len(states) == 6 and all(re.fullmatch(r"[hl][0-9a-f]{16}", d) for d in states)
    assert len(set(states)) == 6  # keyed per person: five A grades do not share one value
