"""健診の集計 against a viewer who knows, person by person, who had a checkup and whether it is 判定待ち
(roughly C–E) or 判定不要 (roughly A–B): no view, and no pair of views, may tell them one person's grade."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

from accounts.services import member_create
from checkups.disclosure import Board, Counted
from checkups.models import CheckupRecord, GradeSnapshot, Judgement
from checkups.services import checkup_judge, checkup_record_save
from tenants.context import tenant_context
from tests.checkups.test_checkup_pages import _client, clinic  # noqa: F401  (the fixture)

VALUES = {"systolic": D("110"), "diastolic": D("70"), "ldl": D("100"), "hba1c": D("5.2")}
BASE = "AABBA" + "DECD"  # with the employee's C: five of A–B in two grades, five of C–E in three


def _person(world, number: str, grade: str, *, department=None) -> Judgement:
    """Someone in 営業部 (or ``department``) with a 2025 checkup whose newest judgement reads ``grade``
    ("" for none)."""
    person = member_create(
        employee_number=number, name=f"集計 {number}", office=world.office_a,
        department=department or world.department_a, sex="female", birth_date=dt.date(1985, 1, 1),
    )  # fmt: skip
    record = checkup_record_save(member=person, exam_date=dt.date(2025, 7, 1), program="regular", values=VALUES)
    judgement = checkup_judge(record=record)
    Judgement.objects.filter(pk=judgement.pk).update(overall=grade)
    return judgement


def _people(world, grades: str, prefix: str = "G") -> list[Judgement]:
    with tenant_context(world.tenant_a):
        return [_person(world, f"{prefix}-{i}", grade) for i, grade in enumerate(grades)]


def _sales(client, department: str = "営業部") -> tuple[int, list[str], str]:
    """A group's 人数, its grade cells (a number per grade, or 計 n for a class) and its as-of note."""
    page = client.get("/checkups/dashboard/").content.decode()
    row = page.split(f"<td>{department}</td>", 1)[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>", " ", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    if "非表示" in cells[0]:
        return 0, [], cells[0]
    grade_cells = cells[1:-3]  # 人数 first; 就業判定済み, 受診率, 集計時点 last
    return int(cells[0]), grade_cells, cells[-1]


def test_one_more_checkup_does_not_show_until_five_people_of_its_class_changed_in_two_grades(world, clinic):  # noqa: F811
    _people(world, BASE)
    hr = _client("hr@a.example")
    people, before, note = _sales(hr)
    assert (people, before) == (10, ["3", "2", "2", "2", "1"]) and "10人" in note

    _people(world, "D", "X")  # one person's checkup arrives, graded D: 判定待ち tells HR it is C–E
    assert _sales(hr)[:2] == (11, before), "the difference would be X's grade"
    _people(world, "AAAA", "L")  # four of A–B: still one person of C–E changed
    assert _sales(hr)[1] == before
    _people(world, "CDCD", "H")  # five of C–E now, in two grades; but four of A–B
    assert _sales(hr)[1] == before
    _people(world, "B", "M")  # and a fifth of A–B
    people, after, note = _sales(hr)
    assert (people, after) == (20, ["7", "3", "4", "5", "1"]) and "20人" in note


def test_five_arrivals_of_one_grade_show_as_a_total_for_the_rest_of_the_year(world, clinic):  # noqa: F811
    """Five people of A–B arrive: the counts move (five changed, as HR saw happen), but A+5 would make each
    of them A, so A–B shows its total; and keeps it, since any later breakdown would tell which grade."""
    _people(world, BASE)
    hr = _client("hr@a.example")
    assert _sales(hr)[1] == ["3", "2", "2", "2", "1"]
    _people(world, "AAAAA", "L")
    people, cells, _ = _sales(hr)
    assert (people, cells) == (15, ["計 10", "2", "2", "1"])
    _people(world, "ABABA", "M")
    assert _sales(hr)[:2] == (20, ["計 15", "2", "2", "1"])


def test_a_whole_class_of_one_grade_stays_a_total_when_others_join(world, clinic):  # noqa: F811
    """計 5 for five people of one grade; a breakdown after five more in two grades (A 7, B 3) would tell
    that the first five were A."""
    _people(world, "AAAAA")
    hr = _client("hr@a.example")
    assert _sales(hr)[1] == ["計 5", "計 1"]
    _people(world, "AABBB", "L")
    assert _sales(hr)[1] == ["計 10", "計 1"]


def test_the_grades_people_leave_are_checked_too(world, clinic):  # noqa: F811
    """C–E holds C4 D5 E1; the five D are judged again (a correction) as C, C, C, C, E. Publishing C8 D0 E2
    would tell that every one of them was D."""
    judged = _people(world, "AABBA" + "DDDDD" + "CCCE")  # with the employee's C
    hr = _client("hr@a.example")
    assert _sales(hr)[1] == ["3", "2", "4", "5", "1"]
    with tenant_context(world.tenant_a):
        for j, grade in zip(judged[5:10], "CCCCE", strict=True):
            Judgement.objects.filter(pk=checkup_judge(record=j.record).pk).update(overall=grade)
    assert _sales(hr)[1] == ["3", "2", "計 10"]


def test_a_class_of_fewer_than_five_or_of_one_grade_shows_its_total_only(world, clinic):  # noqa: F811
    """Six people: five graded A and the employee (C). HR knows which one is 判定待ち: a C column of 1 would
    be that person's grade, and an A column of 5 everyone else's."""
    _people(world, "AAAAA")
    people, cells, _ = _sales(_client("hr@a.example"))
    assert (people, cells) == (6, ["計 5", "計 1"])


def test_people_without_a_grade_do_not_make_a_group_big_enough(world, clinic):  # noqa: F811
    from tenants.services import department_create

    with tenant_context(world.tenant_a):
        lab = department_create(office=world.office_a, name="研究部")
        for i, grade in enumerate(["", "", "", "", "D"]):  # height and weight only: no grade, and X
            _person(world, f"R-{i}", grade, department=lab)
    _people_count, cells, note = _sales(_client("hr@a.example"), "研究部")
    assert not cells and "5人未満" in note


def test_moving_people_between_departments_makes_no_group_that_differs_by_one_person(world, clinic):  # noqa: F811
    """Move P0–P4 to a new department and look, then P1–P5 to another and look: the two groups would differ by
    P0 and P5 alone. People stay where they were first published."""
    from tenants.services import department_create

    movers = [j.record.member for j in _people(world, "DAABBA", "P")]
    hr = _client("hr@a.example")
    shown = _sales(hr)[:2]
    for name, people in (("新1", movers[0:5]), ("新2", movers[1:6])):
        with tenant_context(world.tenant_a):
            department = department_create(office=world.office_a, name=name)
            for person in people:
                person.department = department
                person.save()
        page = hr.get("/checkups/dashboard/").content.decode()
        assert f"<td>{name}</td>" not in page  # their checkups still count where they were published
        assert _sales(hr)[:2] == shown


def test_whether_the_counts_move_follows_what_hr_sees_happen_not_the_grades(world, clinic):  # noqa: F811
    """Five of C–E judged again (a correction, a new criteria version): the counts are published again even
    though no grade changed, so a republication never tells that one grade did; one judged again alone,
    whatever their new grade, moves nothing."""
    judged = _people(world, BASE)
    hr = _client("hr@a.example")
    _people_count, before, note = _sales(hr)
    with tenant_context(world.tenant_a):
        again = checkup_judge(record=judged[5].record)  # D → E: one person
        Judgement.objects.filter(pk=again.pk).update(overall="E")
    grades, note_now = _sales(hr)[1:]
    assert grades == before and note_now.startswith(note)  # the same counts of the same day (now said to wait)
    with tenant_context(world.tenant_a):
        for j, grade in zip(judged[6:9], BASE[6:9], strict=True):  # three more of C–E and the employee's: five
            Judgement.objects.filter(pk=checkup_judge(record=j.record).pk).update(overall=grade)  # same grades
        employee = CheckupRecord.objects.get(member=clinic["record"].member, fiscal_year=2025)
        kept = Judgement.objects.filter(record=employee).order_by("-judged_at", "-pk").first().overall
        Judgement.objects.filter(pk=checkup_judge(record=employee).pk).update(overall=kept)
    people, after, _note = _sales(hr)
    assert (people, after) == (10, ["3", "2", "2", "1", "2"])  # the first one's E, published with the others


def test_two_views_at_once_never_publish_counts_one_person_apart(world, clinic):  # noqa: F811
    """A view that read the records before a concurrent one published newer counts must not put its older
    counts back (they would differ from the newer ones by the people in between)."""

    def group(ids) -> dict[int, Counted]:
        return {m: Counted("AB"[m % 2], m, m) for m in ids}

    with tenant_context(world.tenant_a):
        Board(2025).shown({"x:": group(range(1, 6))})
        late, early = Board(2025), Board(2025)  # both read the snapshot of people 1–5
        late.shown({"x:": group(range(1, 11))})  # 6–10 added: published
        # early read another moment's group, 1–9 and 11: five changes from what it read, two from what
        # late published — publishing it would show the difference of person 10 and person 11
        shown = early.shown({"x:": group([*range(1, 10), 11])})
        assert shown["x:"].people == 10
        snapshot = GradeSnapshot.objects.get(group="x:")
        assert snapshot.people == 10 and "10" in snapshot.members and "11" not in snapshot.members


def test_snapshots_keep_no_grade_of_anyone(world, clinic):  # noqa: F811
    _people(world, BASE)
    _sales(_client("hr@a.example"))
    with tenant_context(world.tenant_a):
        snapshot = GradeSnapshot.objects.get()
    assert snapshot.people == 10 and sum(snapshot.grades.values()) == 10
    # per person only what HR sees: the class (判定待ち or not) and which record and judgement count
    states = list(snapshot.members.values())
    assert len(states) == 10 and all(re.fullmatch(r"[hl]\d+\.\d+", state) for state in states)
    assert not any(grade in state for state in states for grade in "ABCDE")


def test_the_note_and_the_totals_read_in_english(world, clinic):  # noqa: F811
    _people(world, "AAAAA")
    hr = _client("hr@a.example")
    hr.cookies["django_language"] = "en"
    page = hr.get("/checkups/dashboard/").content.decode()
    assert "as of" in page and "Total 5" in page and "時点" not in page and "計" not in page


def test_counts_waiting_for_enough_changes_say_so_without_saying_how_many(world, clinic):  # noqa: F811
    _people(world, BASE)
    hr = _client("hr@a.example")
    assert "未反映" not in _sales(hr)[2]  # published just now: nothing newer
    _people(world, "D", "X")  # one checkup arrives: the counts wait, and the page says they do
    people, _grades, note = _sales(hr)
    assert people == 11 and "10人" in note and "その後の健診・判定は未反映" in note
    _people(world, "AAAAB", "L")
    _people(world, "CDCD", "H")  # enough changes in both classes: published again, nothing waits
    assert "未反映" not in _sales(hr)[2]
