"""Roster import services: formats, semantics, dry run, bad input, resumable apply, audit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts import roster_import
from accounts.models import Member, User, member_indexes
from accounts.selectors import member_get_by_employee_number, members_find_by_name
from healthapp import jobs
from healthapp.crypto.blind_index import blind_index
from healthapp.csvsafe import csv_bytes
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tenants.models import Office

pytestmark = pytest.mark.usefixtures("private_storage")

JA = ["社員番号", "氏名", "フリガナ", "生年月日", "性別", "事業所", "部署", "資格喪失日", "メールアドレス"]
EN = ["employee_number", "name", "kana", "birth_date", "sex", "office", "department", "qualification_end", "email"]


def roster_csv(rows, *, header=JA, encoding="cp932", delimiter=",", bom=False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode(encoding)


def person(number: str, name: str = "山田 太郎", **extra) -> list[str]:
    values = {"kana": "ヤマダ タロウ", "birth": "1980-04-01", "sex": "男", "office": "東京本社", "dept": "営業部",
              "end": "", "email": ""} | extra  # fmt: skip
    return [number, name, values["kana"], values["birth"], values["sex"], values["office"], values["dept"],
            values["end"], values["email"]]  # fmt: skip


def validate(tenant, data: bytes, *, mode="partial", create_offices=False, clear_blanks=False) -> Job:
    with tenant_context(tenant):
        job = roster_import.roster_import_start(
            upload=io.BytesIO(data), file_name="roster.csv", mode=mode, create_offices=create_offices,
            clear_blanks=clear_blanks, acting_user=None, enqueue=False,
        )  # fmt: skip
        return roster_import.roster_import_validate(job_id=job.pk)


def apply(tenant, job: Job) -> Job:
    with tenant_context(tenant):
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False, acknowledged=True)
        return roster_import.roster_import_run(job_id=job.pk)


def run(tenant, data: bytes, **options) -> Job:
    job = validate(tenant, data, **options)
    assert job.state == Job.State.VALIDATED, (job.error_code, job.errors)
    return apply(tenant, job)


def members(tenant) -> dict[str, Member]:
    with tenant_context(tenant):
        roster = Member.objects.select_related("user", "office", "department__office")
        return {str(m.employee_number): m for m in roster}


# --- Dates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-04-01", dt.date(2024, 4, 1)),
        ("2024/4/1", dt.date(2024, 4, 1)),
        ("２０２４／０４／０１", dt.date(2024, 4, 1)),
        ("20240401", dt.date(2024, 4, 1)),
        ("令和6年4月1日", dt.date(2024, 4, 1)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("R6.4.1", dt.date(2024, 4, 1)),
        ("r1.5.1", dt.date(2019, 5, 1)),
        ("H31/4/30", dt.date(2019, 4, 30)),
        ("平成元年1月8日", dt.date(1989, 1, 8)),
        ("S64.1.7", dt.date(1989, 1, 7)),
        ("昭和55年12月3日", dt.date(1980, 12, 3)),
    ],
)
def test_dates_in_gregorian_and_japanese_era_forms(text, expected):
    assert roster_import.parse_date(text) == expected


@pytest.mark.parametrize(
    "text, code",
    [
        ("H31.5.1", "date_outside_era"),  # 平成 ended on 2019-04-30
        ("令和元年4月30日", "date_outside_era"),
        ("昭和64年1月8日", "date_outside_era"),
        ("2024-02-30", "date_invalid"),
        ("R6.13.1", "date_invalid"),
        ("4/1/2024", "date_format"),
        ("yesterday", "date_format"),
    ],
)
def test_bad_dates_are_refused_with_a_reason(text, code):
    with pytest.raises(ValueError, match=code):
        roster_import.parse_date(text)


# --- Formats ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, bom, delimiter, header",
    [("cp932", False, ",", JA), ("utf-8", False, ",", JA), ("utf-8", True, ",", EN), ("cp932", False, "\t", EN)],
)
def test_cp932_utf8_bom_comma_tab_and_both_header_languages(world, encoding, bom, delimiter, header):
    data = roster_csv([person("N1"), person("N2", "髙橋 﨑子", kana="タカハシ サキコ", sex="女")],
                      header=header, encoding=encoding, delimiter=delimiter, bom=bom)  # fmt: skip
    job = run(world.tenant_a, data)
    assert job.counts["added"] == 2 and job.counts["errors"] == 0
    roster = members(world.tenant_a)
    assert roster["N2"].name == "髙橋 﨑子" and roster["N2"].sex == "female"
    assert roster["N1"].birth_date == dt.date(1980, 4, 1)
    assert roster["N1"].office == world.office_a and roster["N1"].department == world.department_a


def test_new_members_are_stored_encrypted_and_found_by_blind_index(world):
    run(
        world.tenant_a,
        roster_csv([person("E77", "暗号 花子", email="hanako@example.jp"), person("E78"), person("E79")]),
    )
    with tenant_context(world.tenant_a):
        member = member_get_by_employee_number("E77")
        assert member.name == "暗号 花子" and member.email == "hanako@example.jp"
        assert members_find_by_name("暗号花子") == [member]
        assert Member.objects.get(email_index=member_indexes(world.tenant_a.pk, {"email": "HANAKO@example.jp"})[
            "email_index"]) == member  # fmt: skip
        # Every entry gets its own random (version 4, RFC 4122) uid, the key its sealed values are bound to.
        uids = [member_get_by_employee_number(number).uid for number in ("E77", "E78", "E79")]
        assert len(set(uids)) == 3
        assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in uids)
        with connection.cursor() as cur:
            cur.execute("SELECT name, email, employee_number FROM accounts_member WHERE id = %s", [member.pk])
            raw = b"".join(bytes(v) for v in cur.fetchone())
    assert "暗号".encode() not in raw and b"hanako" not in raw and b"E77" not in raw


@pytest.mark.parametrize(
    "data, code",
    [
        (b"\x00\x01\x02\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary"),
        ("社員番号,氏名\nN1,山田\n".encode("utf-16"), "utf16"),  # Excel's "Unicode text"
        ("社員番号\t氏名\nN1\t山田\n".encode("utf-16-le"), "utf16"),  # the same without its BOM
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, "spreadsheet"),  # an .xlsx as saved by Excel
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "spreadsheet"),  # an .xls
        (b"\x81\x39\xff\xfe,\xfd\n", "encoding"),
        (roster_csv([person("N1")], header=["社員番号", "氏名", "年収"]), "unknown_column"),
        (roster_csv([["N1"]], header=["社員番号"]), "missing_column"),
        (roster_csv([], header=JA), "no_rows"),
        (roster_csv([["N1", "山田"]], header=["社員番号", "社員番号"]), "duplicate_column"),
        ('社員番号,氏名\n"N1,山田\n'.encode(), "csv_format"),
    ],
)
def test_file_level_problems_fail_the_job_and_change_nothing(world, data, code):
    before = members(world.tenant_a).keys()
    job = validate(world.tenant_a, data)
    assert job.state == Job.State.FAILED and job.error_code == code
    assert not roster_import.can_apply(job)
    assert members(world.tenant_a).keys() == before


def test_oversize_upload_is_refused_before_anything_is_stored(world, settings):
    settings.ROSTER_IMPORT_MAX_BYTES = 100
    with tenant_context(world.tenant_a), pytest.raises(AppError) as exc:
        roster_import.roster_import_start(
            upload=io.BytesIO(b"x" * 101), file_name="big.csv", mode="partial", create_offices=False, acting_user=None
        )
    assert exc.value.code == "file_too_large"
    with tenant_context(world.tenant_a):
        assert not Job.objects.exists()


# --- Row errors ---------------------------------------------------------------------------------------------


def test_header_problems_name_the_column_by_position_and_never_show_the_first_persons_data(world):
    """A file without its header line has a person's data where the header should be: never shown. A real
    header line (it names 氏名) has its text shown too (tests/accounts/test_roster_import_guidance.py)."""
    job = validate(world.tenant_a, roster_csv([person("N1")], header=["N0", "山田 太郎"]))
    assert (job.error_code, job.errors) == ("unknown_column", [{"row": 1, "column": "#1", "code": "unknown_column"}])
    job = validate(world.tenant_a, roster_csv([["N1", "山田", "山田"]], header=["社員番号", "氏名", "名前"]))
    assert job.errors == [{"row": 1, "column": "#3", "code": "duplicate_column", "header": "名前"}]
    job = validate(world.tenant_a, roster_csv([["x"]], header=["フリガナ"]))
    assert [(e["column"], e["code"]) for e in job.errors] == [("employee_number", "missing_column"),
                                                              ("name", "missing_column")]  # fmt: skip


def test_row_errors_have_row_column_reason_and_never_the_value(world):
    rows = [
        person("OK1"),
        person("BAD1", birth="R6.13.40"),
        person("=cmd|' /C calc'!A0"),
        person("OK1", "二重 登録"),  # duplicate key of the first row
        person("BAD2", email="not-an-address"),
        person("BAD3", sex="?", kana="yamada"),
        person("", "番号なし"),
        person("BAD4", office="存在しない支店"),
        person("BAD5", name="@SUM(1+1)"),
        person("BAD6", name='＝HYPERLINK("http://x")'),  # full-width: NFKC would make it a formula
        person("BAD7", name="=1+1", office="存在しない支店"),  # both said at once, not the office after the fix
    ]
    job = validate(world.tenant_a, roster_csv(rows))
    found = {(e["row"], e["column"], e["code"]) for e in job.errors}
    assert found == {
        (3, "birth_date", "date_invalid"),
        (4, "employee_number", "formula"),
        (5, "employee_number", "duplicate_key"),
        (6, "email", "email"),
        (7, "sex", "sex"),
        (7, "kana_name", "kana"),
        (8, "employee_number", "required"),
        (9, "office", "unknown_office"),
        (10, "name", "formula"),
        (11, "name", "formula"),
        (12, "name", "formula"),
        (12, "office", "unknown_office"),
    }
    assert job.counts == {"rows": 11, "added": 1, "updated": 0, "unchanged": 0, "deactivated": 0, "errors": 10,
                          "new_offices": 0, "new_departments": 0}  # fmt: skip
    report = csv_bytes(roster_import.error_report_header(), roster_import.error_report_rows(job)).decode("utf-8-sig")
    for secret in ("calc", "SUM", "HYPERLINK", "not-an-address", "yamada", "存在しない支店", "二重", "R6.13.40", "BAD"):
        assert secret not in report
    assert all(not line.startswith(("=", "+", "-", "@")) for line in report.splitlines())
    # Only valid rows are applied; nothing else changed.
    apply(world.tenant_a, job)
    assert "OK1" in members(world.tenant_a) and "BAD1" not in members(world.tenant_a)


def test_a_file_with_too_many_errors_is_refused_with_the_rows_found_so_far(world, settings):
    settings.ROSTER_IMPORT_MAX_ERRORS = 2
    rows = [person("T1"), person("T2", birth="x"), person("T3", sex="?"), person("T4", birth="y"), person("T5")]
    job = validate(world.tenant_a, roster_csv(rows))
    assert (job.state, job.error_code) == (Job.State.FAILED, "too_many_errors")
    assert [(e["row"], e["code"]) for e in job.errors] == [(3, "date_format"), (4, "sex"), (5, "date_format")]
    assert "T1" not in members(world.tenant_a)  # nothing applied


def test_an_office_entered_with_full_width_digits_is_the_files_office(world):
    from tenants.services import department_create, office_create

    with tenant_context(world.tenant_a):
        factory = office_create(name="第１工場")
        department_create(office=factory, name="製造１課")
    job = run(world.tenant_a, roster_csv([person("FW1", office="第1工場", dept="製造1課")]), create_offices=True)
    assert job.counts["new_offices"] == 0
    assert members(world.tenant_a)["FW1"].office == factory
    with tenant_context(world.tenant_a):
        assert Office.objects.filter(name__contains="工場").count() == 1


def test_unknown_offices_are_created_only_when_asked(world):
    data = roster_csv([person("N1", office="札幌支店", dept="総務部")])
    refused = validate(world.tenant_a, data)
    assert refused.counts["errors"] == 1
    job = run(world.tenant_a, data, create_offices=True)
    assert job.counts["new_offices"] == 1
    with tenant_context(world.tenant_a):
        office = Office.objects.get(name="札幌支店")
        assert members(world.tenant_a)["N1"].department.office == office


def test_the_dry_run_creates_no_office_even_for_a_member_moving_into_a_new_one(world):
    run(world.tenant_a, roster_csv([person("N1")]), create_offices=True)
    with tenant_context(world.tenant_a):
        offices_before = set(Office.objects.values_list("name", flat=True))
    job = validate(world.tenant_a, roster_csv([person("N1", office="札幌支店", dept="総務部")]), create_offices=True)
    assert (job.counts["updated"], job.counts["unchanged"], job.counts["new_offices"]) == (1, 0, 1)
    with tenant_context(world.tenant_a):
        assert set(Office.objects.values_list("name", flat=True)) == offices_before  # preview only
    apply(world.tenant_a, job)
    assert members(world.tenant_a)["N1"].office.name == "札幌支店"


def test_full_mode_deactivates_the_members_the_preview_counted_not_later_additions(world):
    """Entered after the confirm, before the worker applies (a roster changed before the confirm refuses
    it: tests/accounts/test_roster_import_guidance.py)."""
    job = validate(world.tenant_a, roster_csv([person("A1", "甲野 1", office="", dept="")]), mode="full")
    assert job.counts["deactivated"] == 2  # A0 and A2
    with tenant_context(world.tenant_a):
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False, acknowledged=True)
        Member.objects.create(employee_number="LATE", name="後藤 追加")  # entered by hand meanwhile
        roster_import.roster_import_run(job_id=job.pk)
    roster = members(world.tenant_a)
    assert roster["LATE"].is_active and not roster["A0"].is_active and not roster["A2"].is_active


def test_a_number_entered_by_hand_after_the_preview_is_updated_by_the_apply_not_entered_twice(world, monkeypatch):
    """The apply writes the rows its dry run found no entry for without looking the roster up again; a
    number entered meanwhile makes that insert hit the unique key, and the chunk is written again, looked up."""
    job = validate(world.tenant_a, roster_csv([person("N1", "新井 一"), person("N2", "新井 二")]))
    assert job.counts["added"] == 2
    lookups = []
    real_existing = roster_import._existing
    monkeypatch.setattr(
        roster_import, "_existing", lambda rows, *a, **k: lookups.append(len(rows)) or real_existing(rows, *a, **k)
    )
    with tenant_context(world.tenant_a):
        Member.objects.create(employee_number="N1", name="手入力 一")
    done = apply(world.tenant_a, job)
    assert done.counts["applied"]["added"] == 1 and done.counts["applied"]["updated"] == 1
    assert lookups == [0, 2]  # trusted first, then both rows looked up
    with tenant_context(world.tenant_a):
        entries = list(
            Member.objects.filter(
                employee_number_index=member_indexes(world.tenant_a.pk, {"employee_number": "N1"})[
                    "employee_number_index"
                ]
            )
        )
    assert [m.name for m in entries] == ["新井 一"]
    assert members(world.tenant_a)["N2"].name == "新井 二"


def test_a_confirm_that_does_not_say_the_deactivations_were_acknowledged_is_refused(world):
    job = validate(world.tenant_a, roster_csv([person("A1", "甲野 1", office="", dept="")]), mode="full")
    with tenant_context(world.tenant_a), pytest.raises(AppError) as refused:
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)
    assert refused.value.code == "acknowledge_required" and "2" in refused.value.message
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
    assert job.state == Job.State.VALIDATED and all(m.is_active for m in members(world.tenant_a).values())


# --- Semantics ----------------------------------------------------------------------------------------------


def test_reimport_updates_changed_rows_and_leaves_the_rest_unchanged(world):
    run(world.tenant_a, roster_csv([person("N1"), person("N2")]))
    job = validate(world.tenant_a, roster_csv([person("N1"), person("N2", "佐藤 次郎")]))
    assert (job.counts["added"], job.counts["updated"], job.counts["unchanged"]) == (0, 1, 1)
    job = apply(world.tenant_a, job)
    assert job.counts["applied"]["updated"] == 1 and job.counts["applied"]["unchanged"] == 1
    with tenant_context(world.tenant_a):
        assert member_get_by_employee_number("N2").name == "佐藤 次郎"
        assert Member.objects.count() == 3 + 2  # world's three + two, no duplicates


def test_full_mode_deactivates_missing_members_and_their_logins_never_deletes(world):
    # world.roster_a[0] (A0) is linked to member@a.example; the file lists A1 only.
    job = validate(world.tenant_a, roster_csv([person("A1", "甲野 1", office="", dept="")]), mode="full")
    assert job.counts["deactivated"] == 2  # A0 and A2 (the admin's own entry is not keyed: none here)
    apply(world.tenant_a, job)
    roster = members(world.tenant_a)
    assert not roster["A0"].is_active and not roster["A2"].is_active and roster["A1"].is_active
    assert not User.objects.get(email="member@a.example").is_active
    assert len(roster) == 3


def test_someone_listed_again_gets_back_the_login_the_roster_turned_off_not_one_an_operator_did(world):
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    run(world.tenant_a, roster_csv([person("A0", "甲野 0", end=past), person("A1", "甲野 1", end=past)]))
    member_login = User.objects.get(email="member@a.example")  # A0's login
    assert not member_login.is_active and member_login.disabled_by_roster
    # A1 gets a login, which an operator turns off for a reason of their own while A1 is away
    with tenant_context(world.tenant_a):
        from accounts.services import user_create, user_save_by_operator

        other = user_create(email="a1@a.example", role="employee", tenant=world.tenant_a, password="Pass-word-1",
                            member=members(world.tenant_a)["A1"])  # fmt: skip
    operator = User.objects.create_superuser("ops@ops.example", "x" * 16)
    other.is_active = False
    user_save_by_operator(user=other, acting_user=operator)

    job = run(world.tenant_a, roster_csv([person("A0", "甲野 0"), person("A1", "甲野 1")]))  # both back
    assert job.counts["applied"]["updated"] == 2
    roster = members(world.tenant_a)
    assert roster["A0"].is_active and roster["A1"].is_active
    member_login.refresh_from_db()
    assert member_login.is_active and not member_login.disabled_by_roster
    assert not User.objects.get(email="a1@a.example").is_active  # the operator's decision stands
    assert job.counts["applied"]["logins_enabled"] == 1
    from audit.models import AuditEvent

    with tenant_context(world.tenant_a):
        event = AuditEvent.objects.filter(action="roster.imported").order_by("-pk").first()
    assert event.details["logins_enabled"] == 1


def test_a_row_listing_someone_else_under_the_number_does_not_revive_the_previous_holders_login(world):
    """A0 leaves; a year on, the number comes back on another person (other name and birth date): the entry
    is active again, but A0's login stays off."""
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    run(world.tenant_a, roster_csv([person("A0", "甲野 0", end=past)]))
    run(world.tenant_a, roster_csv([person("A0", "別人 花子", birth="1999-09-09")]))
    assert members(world.tenant_a)["A0"].is_active
    assert not User.objects.get(email="member@a.example").is_active


def test_partial_mode_touches_listed_rows_only(world):
    job = run(world.tenant_a, roster_csv([person("A1", "甲野 1", office="", dept="")]))
    assert job.counts["applied"]["deactivated"] == 0
    assert all(m.is_active for m in members(world.tenant_a).values())


def test_full_mode_refuses_a_file_with_errors(world):
    job = validate(world.tenant_a, roster_csv([person("A1"), person("A2", birth="bad")]), mode="full")
    assert job.state == Job.State.VALIDATED and not roster_import.can_apply(job)
    with tenant_context(world.tenant_a), pytest.raises(AppError):
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)


def test_past_qualification_end_deactivates_future_one_is_scheduled(world):
    today = dt.date.today()
    past, future = (today - dt.timedelta(days=1)).isoformat(), (today + dt.timedelta(days=30)).isoformat()
    rows = [person("A0", "甲野 0", end=past), person("N9", end=future), person("N8", end=past)]
    job = validate(world.tenant_a, roster_csv(rows))
    assert job.counts["deactivated"] == 1 and job.counts["added"] == 2
    assert job.counts["added_inactive"] == 1  # N8 is added already ended: the preview says so
    apply(world.tenant_a, job)
    roster = members(world.tenant_a)
    assert not roster["A0"].is_active and not User.objects.get(email="member@a.example").is_active
    assert roster["N9"].is_active and roster["N9"].qualification_end == today + dt.timedelta(days=30)
    with tenant_context(world.tenant_a):
        assert roster_import.members_expire_qualifications(today=today + dt.timedelta(days=29)) == 0
        assert roster_import.members_expire_qualifications(today=today + dt.timedelta(days=30)) == 1
    assert not members(world.tenant_a)["N9"].is_active


def test_a_file_without_the_end_date_column_leaves_a_past_end_in_force(world):
    past = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    run(world.tenant_a, roster_csv([person("Q1", end=past)]))
    assert not members(world.tenant_a)["Q1"].is_active
    job = validate(world.tenant_a, roster_csv([["Q1", "山田 太郎"]], header=["社員番号", "氏名"]))
    assert job.counts["unchanged"] == 1 and job.counts["updated"] == 0
    apply(world.tenant_a, job)
    assert not members(world.tenant_a)["Q1"].is_active


def test_moving_to_another_office_without_a_department_column_drops_the_old_department(world):
    job = run(world.tenant_a, roster_csv([["A1", "甲野 1", "大阪支社"]], header=["社員番号", "氏名", "事業所"]),
              create_offices=True)  # fmt: skip
    assert job.counts["applied"]["updated"] == 1
    moved = members(world.tenant_a)["A1"]
    assert moved.office.name == "大阪支社" and moved.department is None


def test_an_insurer_file_that_brings_employee_numbers_updates_the_people_on_file_by_card(world):
    """First imported by card alone, then with 社員番号: the same people get their numbers (not a second
    entry each, and mode full deactivates nobody)."""
    header = ["保険者記号", "保険者番号", "続柄", "氏名", "性別", "生年月日"]
    rows = [["12", "345", "本人", "乙山 父", "男", "S50.1.1"], ["12", "345", "家族", "乙山 子", "女", "H20.2.2"]]
    run(world.tenant_b, roster_csv(rows, header=header))
    with tenant_context(world.tenant_b):
        before = Member.objects.count()
    numbered = [["B-1", *rows[0]], ["B-2", *rows[1]]]
    job = validate(world.tenant_b, roster_csv(numbered, header=["社員番号", *header]), mode="full")
    assert (job.counts["added"], job.counts["updated"]) == (0, 2)
    assert job.counts["deactivated"] == before - 2  # the fixture's own people, not the two on the card
    apply(world.tenant_b, job)
    with tenant_context(world.tenant_b):
        assert Member.objects.count() == before
        assert member_get_by_employee_number("B-2").name == "乙山 子"


def test_insurer_rows_are_keyed_by_card_symbol_number_relationship(world):
    header = ["保険者記号", "保険者番号", "続柄", "氏名", "性別", "生年月日"]
    rows = [["12", "345", "本人", "乙山 父", "男", "S50.1.1"], ["12", "345", "家族", "乙山 子", "女", "H20.2.2"]]
    data = roster_csv(rows, header=header)
    job = run(world.tenant_b, data)
    assert job.counts["applied"]["added"] == 2
    again = validate(world.tenant_b, data)
    assert again.counts["unchanged"] == 2 and again.counts["added"] == 0


def test_a_child_s_birth_date_on_a_company_roster_is_refused_but_an_insurers_dependant_may_be_a_baby(world):
    """令和2年 typed for 平成2年 makes a six-year-old employee: refused on a company's roster, named; a 健保's
    dependants are children and babies."""
    job = validate(
        world.tenant_a, roster_csv([person("Y1", birth="令和2年4月1日"), person("Y2", birth="平成2年4月1日")])
    )
    assert [(e["row"], e["column"], e["code"]) for e in job.errors] == [(2, "birth_date", "too_young")]
    told = roster_import.error_message("too_young")
    assert told == "生年月日から数えると15歳未満です。元号や年の誤りがないか確認してください。"
    family = [["12", "345", "本人", "乙山 母", "女", "S60.1.1"], ["12", "345", "家族", "乙山 赤子", "女", "R6.2.2"]]
    data = roster_csv(family, header=["保険証記号", "保険証番号", "続柄", "氏名", "性別", "生年月日"])
    assert run(world.tenant_b, data).counts["applied"]["added"] == 2


CARD_HEADER = ["保険証記号", "保険証番号", "枝番", "続柄", "氏名", "性別", "生年月日"]
FATHER = ["12", "345", "00", "本人", "乙山 父", "男", "S50.1.1"]
TWINS = [
    ["12", "345", "01", "家族", "乙山 一子", "女", "H20.2.2"],
    ["12", "345", "02", "家族", "乙山 二子", "女", "H20.2.2"],
]


def card_roster(tenant) -> dict[str, Member]:
    """The entries under card 12/345, by 枝番."""
    with tenant_context(tenant):
        return {str(m.insurance_branch): m for m in Member.objects.all() if m.insurance_number == "345"}


def test_twins_on_one_card_are_two_people_told_apart_by_the_branch(world):
    """Twins of one sex share 記号/番号/続柄/性別/生年月, the card key: with the 枝番 each is imported,
    updated and left out (mode full) as themselves."""
    data = roster_csv([FATHER, *TWINS], header=CARD_HEADER)
    assert run(world.tenant_b, data).counts["applied"]["added"] == 3
    assert validate(world.tenant_b, data).counts["unchanged"] == 3
    renamed = [FATHER, TWINS[0], [*TWINS[1][:4], "乙山 双葉", *TWINS[1][5:]]]
    job = run(world.tenant_b, roster_csv(renamed, header=CARD_HEADER))
    assert (job.counts["applied"]["updated"], job.counts["applied"]["added"]) == (1, 0)
    on_card = card_roster(world.tenant_b)
    assert (on_card["01"].name, on_card["02"].name) == ("乙山 一子", "乙山 双葉")
    with tenant_context(world.tenant_b):
        others = Member.objects.filter(is_active=True).count() - 3
    job = validate(world.tenant_b, roster_csv([FATHER, TWINS[0]], header=CARD_HEADER), mode="full")
    assert job.counts["deactivated"] == others + 1  # the second twin left the insurer
    apply(world.tenant_b, job)
    on_card = card_roster(world.tenant_b)
    assert (on_card["00"].is_active, on_card["01"].is_active, on_card["02"].is_active) == (True, True, False)


def test_rows_sharing_a_card_key_without_branches_are_refused_not_merged(world):
    header = [c for c in CARD_HEADER if c != "枝番"]
    without = [[*row[:2], *row[3:]] for row in TWINS]
    job = validate(world.tenant_b, roster_csv(without, header=header))
    assert [(e["row"], e["column"], e["code"]) for e in job.errors] == [(3, "insurance_number", "same_card")]
    job = validate(world.tenant_b, roster_csv([TWINS[0], [*TWINS[1][:2], "", *TWINS[1][3:]]], header=CARD_HEADER))
    assert [(e["row"], e["code"]) for e in job.errors] == [(3, "same_card")]
    job = validate(world.tenant_b, roster_csv([TWINS[0], TWINS[0]], header=CARD_HEADER))
    assert [(e["row"], e["column"], e["code"]) for e in job.errors] == [(3, "insurance_branch", "same_card")]
    assert "枝番" in roster_import.error_message("same_card")


def test_a_branch_given_later_fills_in_the_entry_on_file_and_the_twin_is_added(world):
    header = [c for c in CARD_HEADER if c != "枝番"]
    run(world.tenant_b, roster_csv([[*TWINS[0][:2], *TWINS[0][3:]]], header=header))
    job = run(world.tenant_b, roster_csv([TWINS[0]], header=CARD_HEADER))
    assert (job.counts["applied"]["updated"], job.counts["applied"]["added"]) == (1, 0)
    job = run(world.tenant_b, roster_csv(TWINS, header=CARD_HEADER))
    assert (job.counts["applied"]["unchanged"], job.counts["applied"]["added"]) == (1, 1)
    assert set(card_roster(world.tenant_b)) == {"01", "02"}


def test_a_row_without_branch_that_two_entries_on_file_share_is_an_error(world):
    run(world.tenant_b, roster_csv(TWINS, header=CARD_HEADER))
    header = [c for c in CARD_HEADER if c != "枝番"]
    job = validate(world.tenant_b, roster_csv([[*TWINS[0][:2], *TWINS[0][3:]]], header=header))
    assert [(e["row"], e["code"]) for e in job.errors] == [(2, "card_ambiguous")]
    assert job.counts["errors"] == 1 and job.counts["updated"] == job.counts["added"] == 0


def test_a_row_keyed_by_employee_number_with_another_branch_updates_that_person(world):
    """The 枝番 only tells apart people under one card key: it never outweighs an employee number."""
    header = [*JA, "枝番"]
    run(world.tenant_a, roster_csv([[*person("Z1"), "01"]], header=header))
    job = validate(world.tenant_a, roster_csv([[*person("Z1"), "02"]], header=header))
    assert (job.counts["added"], job.counts["updated"]) == (0, 1)
    apply(world.tenant_a, job)
    assert members(world.tenant_a)["Z1"].insurance_branch == "02"


def test_the_entry_without_branch_stays_its_persons_whichever_twin_comes_first(world, settings):
    """Only 二子 was on file (the second twin used to be a duplicate): the file with both twins' 枝番 fills
    in hers and adds 一子, whether the twins' rows share a chunk or not, and the preview says so."""
    header = [c for c in CARD_HEADER if c != "枝番"]
    run(world.tenant_b, roster_csv([[*TWINS[1][:2], *TWINS[1][3:]]], header=header))
    nijiko = card_roster(world.tenant_b)[""].pk
    for chunk_rows in (1, 1000):
        settings.ROSTER_IMPORT_CHUNK_ROWS = chunk_rows
        job = validate(world.tenant_b, roster_csv(TWINS, header=CARD_HEADER))
        assert (job.counts["added"], job.counts["updated"]) == (1, 1)
    job = apply(world.tenant_b, job)
    assert (job.counts["applied"]["added"], job.counts["applied"]["updated"]) == (1, 1)
    on_card = card_roster(world.tenant_b)
    assert on_card["02"].pk == nijiko and on_card["02"].name == "乙山 二子" and on_card["01"].name == "乙山 一子"


def test_an_insurer_file_bringing_employee_numbers_for_twins_leaves_no_stale_entry(world):
    header = [c for c in CARD_HEADER if c != "枝番"]
    run(world.tenant_b, roster_csv([[*TWINS[0][:2], *TWINS[0][3:]]], header=header))
    numbered = [["T-1", *TWINS[0]], ["T-2", *TWINS[1]]]
    job = validate(world.tenant_b, roster_csv(numbered, header=["社員番号", *CARD_HEADER]), mode="full")
    assert (job.counts["added"], job.counts["updated"]) == (1, 1)
    apply(world.tenant_b, job)
    with tenant_context(world.tenant_b):
        twins = [m for m in Member.objects.filter(is_active=True) if m.insurance_number == "345"]
        assert sorted((str(m.employee_number), m.insurance_branch) for m in twins) == [("T-1", "01"), ("T-2", "02")]


def test_adding_the_branch_column_keeps_the_only_entry_on_the_card_whatever_its_name(world):
    """The first file with 枝番 finds every entry without one: the card's only entry is the row's person
    even if the name is written differently or changed (the name decides only between twins)."""
    header = [c for c in CARD_HEADER if c != "枝番"]
    stored = [*TWINS[0][:2], *TWINS[0][3:]]
    stored[3] = "乙山一子"  # no space on file
    run(world.tenant_b, roster_csv([stored], header=header))
    original = card_roster(world.tenant_b)[""].pk
    married = [*TWINS[0][:4], "甲田 一子", *TWINS[0][5:]]
    job = validate(world.tenant_b, roster_csv([married], header=CARD_HEADER), mode="full")
    assert (job.counts["added"], job.counts["updated"]) == (0, 1) and original not in job.plan["missing"]
    apply(world.tenant_b, job)
    on_card = card_roster(world.tenant_b)
    assert list(on_card) == ["01"] and on_card["01"].pk == original and on_card["01"].name == "甲田 一子"


def test_an_entry_is_not_taken_by_elimination_when_another_row_is_under_its_card(world, settings):
    """Twins, the entry on file under a name neither row has: it is nobody's by elimination; preview and
    apply agree (chunk by chunk too), and mode full leaves it out as nobody listed it."""
    header = [c for c in CARD_HEADER if c != "枝番"]
    stored = [*TWINS[0][:2], *TWINS[0][3:]]
    stored[3] = "乙山 旧姓"
    run(world.tenant_b, roster_csv([stored], header=header))
    original = card_roster(world.tenant_b)[""].pk
    for chunk_rows in (1, 1000):
        settings.ROSTER_IMPORT_CHUNK_ROWS = chunk_rows
        job = validate(world.tenant_b, roster_csv(TWINS, header=CARD_HEADER), mode="full")
        assert (job.counts["added"], job.counts["updated"]) == (2, 0) and original in job.plan["missing"]
    job = apply(world.tenant_b, job)
    assert (job.counts["applied"]["added"], job.counts["applied"]["updated"]) == (2, 0)


def test_a_numbered_row_sharing_a_card_with_an_unchanged_card_row_is_added_on_apply_as_previewed(world):
    header = [c for c in CARD_HEADER if c != "枝番"]
    ichiko = [*TWINS[0][:2], *TWINS[0][3:]]
    run(world.tenant_b, roster_csv([ichiko], header=header))
    entry = card_roster(world.tenant_b)[""].pk
    nijiko = [*ichiko[:3], "乙山 二子", *ichiko[4:]]
    job = validate(world.tenant_b, roster_csv([["", *ichiko], ["T-2", *nijiko]], header=["社員番号", *header]))
    assert (job.counts["unchanged"], job.counts["added"], job.counts["updated"]) == (1, 1, 0)
    job = apply(world.tenant_b, job)
    assert (job.counts["applied"]["added"], job.counts["applied"]["updated"]) == (1, 0)
    with tenant_context(world.tenant_b):
        assert Member.objects.get(pk=entry).name == "乙山 一子"


def test_someone_listed_again_without_a_qualification_end_is_active_again(world):
    """Blank cells keep stored values, but not a past 資格喪失日: a row without one means no end."""
    past = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    run(world.tenant_a, roster_csv([person("Z1", end=past)]))
    assert not members(world.tenant_a)["Z1"].is_active
    job = validate(world.tenant_a, roster_csv([person("Z1", end="")]))
    assert job.counts["updated"] == 1 and job.counts["unchanged"] == 0
    apply(world.tenant_a, job)
    assert members(world.tenant_a)["Z1"].is_active and members(world.tenant_a)["Z1"].qualification_end is None


def test_the_error_report_names_a_header_problems_column_as_the_page_does(world):
    job = validate(world.tenant_a, roster_csv([["N1", "山田", "山田"]], header=["社員番号", "氏名", "名前"]))
    (row,) = list(roster_import.error_report_rows(job))
    assert row[1] == "3 列目（名前）"


@pytest.mark.parametrize("text, stored", [("1", "01"), ("０２", "02"), ("10", "10")])
def test_the_branch_is_stored_as_the_card_prints_it(world, text, stored):
    run(world.tenant_b, roster_csv([[*TWINS[0][:2], text, *TWINS[0][3:]]], header=CARD_HEADER))
    assert set(card_roster(world.tenant_b)) == {stored}


@pytest.mark.parametrize("text, code", [("001", "branch"), ("1a", "branch"), ("-1", "formula")])
def test_a_branch_that_is_not_two_digits_is_refused(world, text, code):
    job = validate(world.tenant_b, roster_csv([[*TWINS[0][:2], text, *TWINS[0][3:]]], header=CARD_HEADER))
    assert [(e["column"], e["code"]) for e in job.errors] == [("insurance_branch", code)]


# --- Resumable apply ----------------------------------------------------------------------------------------


def test_a_crashed_chunk_rolls_back_and_the_rerun_creates_no_duplicates(world, settings, monkeypatch):
    settings.ROSTER_IMPORT_CHUNK_ROWS = 2
    rows = [person(f"C{i}") for i in range(5)]
    job = validate(world.tenant_a, roster_csv(rows))
    assert len(job.plan["chunks"]) == 3
    with tenant_context(world.tenant_a):
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)
        assert roster_import.roster_import_apply_step(job_id=job.pk)  # chunk 0 committed

        real_save = Job.save

        def crash(self, *args, **kwargs):
            raise RuntimeError("worker killed")

        monkeypatch.setattr(Job, "save", crash)
        with pytest.raises(RuntimeError), transaction.atomic():
            roster_import.roster_import_apply_step(job_id=job.pk)  # chunk 1 written, then the crash
        monkeypatch.setattr(Job, "save", real_save)
        assert Job.objects.get(pk=job.pk).next_chunk == 1
        done = roster_import.roster_import_run(job_id=job.pk)
        assert done.state == Job.State.DONE and done.rows_done == 5
        assert done.counts["applied"]["added"] == 5
        assert not roster_import.roster_import_apply_step(job_id=job.pk)  # a late duplicate delivery: no-op
    roster = members(world.tenant_a)
    assert sorted(k for k in roster if k.startswith("C")) == [f"C{i}" for i in range(5)]


def test_rows_spanning_lines_and_blank_lines_keep_their_record_numbers(world, settings):
    settings.ROSTER_IMPORT_CHUNK_ROWS = 2
    data = roster_csv([person("L1"), [], person("L2", "改行\n入り"), person("L3", birth="x"), person("L4")])
    job = validate(world.tenant_a, data)
    assert [(e["row"], e["code"]) for e in job.errors] == [(5, "date_format")]
    apply(world.tenant_a, job)
    assert {"L1", "L2", "L4"} <= members(world.tenant_a).keys() and "L3" not in members(world.tenant_a)


def test_a_dry_run_with_its_rows_cleaned_in_a_helper_process_finds_what_one_process_finds(world, settings, monkeypatch):
    """Large uploads have their rows cleaned in a forked helper (the second core): same counts, the same
    errors at the same rows (a duplicate across chunks too) and the same plan, and the apply writes it."""
    run(world.tenant_a, roster_csv([person("K1"), person("K2"), person("K3", email="k3@example.jp")]))
    rows = [person(f"K{n}", f"名前 {n}") if n != 3 else person("K3", email="k3@example.jp") for n in range(1, 25)]
    rows[6] = person("K7", birth="1980-02-30")
    rows[9] = []  # a blank line
    rows[15] = person("K2")  # K2 again, three chunks later
    rows[20] = person("K21", office="どこか")
    settings.ROSTER_IMPORT_CHUNK_ROWS = 4
    data = roster_csv(rows)
    settings.ROSTER_IMPORT_HELPER_MIN_BYTES = -1
    alone = validate(world.tenant_a, data)
    helpers = []
    real = roster_import.offload.Helper
    monkeypatch.setattr(roster_import.offload, "Helper", lambda func: helpers.append(1) or real(func))
    settings.ROSTER_IMPORT_HELPER_MIN_BYTES = 0
    helped = validate(world.tenant_a, data)
    assert helpers == [1]
    assert helped.counts == alone.counts and helped.errors == alone.errors
    assert helped.plan["chunks"] == alone.plan["chunks"]
    assert [(e["row"], e["code"]) for e in helped.errors] == [(8, "date_invalid"), (17, "duplicate_key"),
                                                              (22, "unknown_office")]  # fmt: skip
    assert (helped.counts["added"], helped.counts["updated"], helped.counts["unchanged"]) == (17, 2, 1)
    apply(world.tenant_a, helped)
    roster = members(world.tenant_a)
    assert roster["K24"].name == "名前 24" and roster["K1"].name == "名前 1" and "K7" not in roster


# --- Audit and command ------------------------------------------------------------------------------------


def test_the_import_is_audited_with_counts_and_file_hash_without_personal_data(world):
    from tests.audit.conftest import events_of

    job = run(world.tenant_a, roster_csv([person("AU1", "監査 太郎", email="taro@example.jp")]))
    (event,) = events_of(world.tenant_a, action="roster.imported")
    assert event.target_id == str(job.pk) and event.details["added"] == 1
    assert event.details["file_sha256"] == job.file_sha256 and len(job.file_sha256) == 64
    assert "監査" not in str(event.details) and "taro" not in str(event.details) and "AU1" not in str(event.details)


def test_an_apply_that_stops_on_an_error_is_audited_with_what_it_changed(world, settings, monkeypatch):
    """The chunks committed before the error stay: the failed job's audit event says how many rows."""
    from accounts.roster_tasks import roster_apply_task
    from tests.audit.conftest import events_of

    settings.ROSTER_IMPORT_CHUNK_ROWS = 1
    job = validate(world.tenant_a, roster_csv([person("F1"), person("F2"), person("F3")]))
    with tenant_context(world.tenant_a):
        roster_import.roster_import_confirm(job=job, acting_user=world.admin_a, enqueue=False)
    write, calls = roster_import._write_chunk, []

    def failing_second_chunk(prepared):
        calls.append(prepared)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return write(prepared)

    monkeypatch.setattr(roster_import, "_write_chunk", failing_second_chunk)
    with pytest.raises(RuntimeError):
        roster_apply_task(world.tenant_a.pk, job.pk)
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "internal"
    assert {"F1", "F2", "F3"} & set(members(world.tenant_a)) == {"F1"}
    (event,) = events_of(world.tenant_a, action="roster.import_failed")
    assert event.details["applied"]["added"] == 1 and event.details["chunks_done"] == 1
    assert event.details["chunks"] == 3 and event.actor_id == world.admin_a.pk
    assert not events_of(world.tenant_a, action="roster.imported")


def test_the_operator_command_dry_runs_then_imports(world, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(roster_csv([person("CMD1"), person("CMD2", birth="R6.2.30")]))
    out = io.StringIO()
    call_command("import_roster", "--tenant", "tenant-a", str(path), "--dry-run", stdout=out)
    assert "added 1" in out.getvalue() and "errors 1" in out.getvalue() and "row 3" in out.getvalue()
    assert "CMD1" not in members(world.tenant_a)
    call_command("import_roster", "--tenant", "tenant-a", str(path), "--verbosity", "0", stdout=out)
    assert "CMD1" in members(world.tenant_a)


def _stored(private_storage) -> list:
    return [p for p in (private_storage / "jobs").rglob("*") if p.is_file()]


def test_the_commands_dry_run_leaves_no_preview_for_the_page_to_apply(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks
):
    path = tmp_path / "roster.csv"
    path.write_bytes(roster_csv([person("CMD1")]))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_roster", "--tenant", "tenant-a", str(path), "--dry-run", stdout=io.StringIO())
    with tenant_context(world.tenant_a):
        (job,) = Job.objects.filter(kind=Job.Kind.ROSTER)
    assert job.state == Job.State.CANCELLED  # not a preview a tenant admin could confirm from the page
    assert not _stored(private_storage)  # and the upload is gone


def test_the_command_asks_before_a_full_import_deactivates_anyone(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks
):
    path = tmp_path / "roster.csv"
    path.write_bytes(roster_csv([person("A0", "甲野 0"), person("CMD1")]))  # A1, A2 are not listed
    from accounts.models import Role
    from accounts.services import user_create
    from tests.conftest import TEST_PASSWORD

    user_create(email="a1@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=TEST_PASSWORD,
                member=members(world.tenant_a)["A1"])  # fmt: skip
    before = {number: m.is_active for number, m in members(world.tenant_a).items()}
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_roster", "--tenant", "tenant-a", str(path), "--mode", "full", "--dry-run", stdout=out)
    assert "deactivated 2" in out.getvalue() and "--acknowledge-deactivations" in out.getvalue()
    assert "of them with a login: 1" in out.getvalue()  # A1 logs in, A2 has no login
    assert "without an active org admin" not in out.getvalue()  # the org admin has no roster entry
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(CommandError, match="--acknowledge-") as refused,
    ):
        call_command("import_roster", "--tenant", "tenant-a", str(path), "--mode", "full", stdout=io.StringIO())
    assert "2" in str(refused.value)
    after = members(world.tenant_a)
    assert {number: m.is_active for number, m in after.items()} == before and "CMD1" not in after  # nothing changed
    assert not _stored(private_storage)  # the refused upload is not left behind
    out = io.StringIO()
    call_command("import_roster", "--tenant", "tenant-a", str(path), "--mode", "full", "--acknowledge-deactivations",
                 "--verbosity", "0", stdout=out)  # fmt: skip
    assert "deactivated 2" in out.getvalue()
    after = members(world.tenant_a)
    assert after["CMD1"].is_active and after["A0"].is_active
    assert not after["A1"].is_active and not after["A2"].is_active


def test_the_command_names_why_a_file_cannot_be_imported(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks
):
    path = tmp_path / "roster.csv"
    path.write_bytes(b"\x00\x01\x02binary junk")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError) as failed:
        call_command("import_roster", "--tenant", "tenant-a", str(path), stdout=io.StringIO())
    with tenant_context(world.tenant_a):
        job = Job.objects.get(kind=Job.Kind.ROSTER)
    assert job.state == Job.State.FAILED and job.error_code == "binary"  # kept, with its reason
    # the importer's reason, not a traceback, in both languages
    ja = "CSV ファイルではありません（バイナリデータが含まれています）。"
    en = "This is not a CSV file (it contains binary data)."
    assert str(failed.value) == f"{ja} / {en}"
    assert not _stored(private_storage)


def test_ctrl_c_during_the_commands_dry_run_leaves_neither_a_preview_nor_the_file(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks, monkeypatch
):
    path = tmp_path / "roster.csv"
    path.write_bytes(roster_csv([person("CMD1")]))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(roster_import, "_validate", interrupted)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(KeyboardInterrupt):
        call_command("import_roster", "--tenant", "tenant-a", str(path), stdout=io.StringIO())
    with tenant_context(world.tenant_a):
        job = Job.objects.get(kind=Job.Kind.ROSTER)
    assert job.state == Job.State.FAILED and job.error_code == "interrupted"
    assert roster_import.error_message(job.error_code) == str(jobs.INTERRUPTED)
    assert not _stored(private_storage) and "CMD1" not in members(world.tenant_a)


def test_ctrl_c_during_the_commands_apply_stops_the_job_and_audits_what_stays(
    world, tmp_path, settings, private_storage, django_capture_on_commit_callbacks, monkeypatch
):
    """Not left 適用中 for a worker's stalled-job sweep to finish behind the operator's back."""
    from tests.audit.conftest import events_of

    settings.ROSTER_IMPORT_CHUNK_ROWS = 1
    path = tmp_path / "roster.csv"
    path.write_bytes(roster_csv([person("F1"), person("F2"), person("F3")]))
    write, calls = roster_import._write_chunk, []

    def interrupted_second_chunk(prepared):
        calls.append(prepared)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return write(prepared)

    monkeypatch.setattr(roster_import, "_write_chunk", interrupted_second_chunk)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(KeyboardInterrupt):
        call_command("import_roster", "--tenant", "tenant-a", str(path), "--verbosity", "0", stdout=io.StringIO())
    with tenant_context(world.tenant_a):
        job = Job.objects.get(kind=Job.Kind.ROSTER)
    assert job.state == Job.State.FAILED and job.error_code == "interrupted"
    assert {"F1", "F2", "F3"} & set(members(world.tenant_a)) == {"F1"}
    (event,) = events_of(world.tenant_a, action="roster.import_failed")
    assert event.details["error"] == "interrupted" and event.details["applied"]["added"] == 1
    assert not _stored(private_storage)


def test_the_upload_is_deleted_once_applied_and_unconfirmed_previews_expire(
    world, private_storage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = run(world.tenant_a, roster_csv([person("F1")]))
    assert not default_storage.exists(job.file) and not [p for p in private_storage.rglob("*") if p.is_file()]
    with django_capture_on_commit_callbacks(execute=True):
        stale = validate(world.tenant_a, roster_csv([person("F2")]))
    assert default_storage.exists(stale.file)
    with tenant_context(world.tenant_a):
        Job.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - dt.timedelta(days=8))
        with django_capture_on_commit_callbacks(execute=True):
            jobs.jobs_expire_unconfirmed(keep_days=django_settings.ROSTER_IMPORT_KEEP_DAYS)
        stale.refresh_from_db()
    assert stale.state == Job.State.FAILED and stale.error_code == "expired"
    assert not default_storage.exists(stale.file)


def test_the_apply_writes_the_rows_its_dry_run_checked_kept_sealed_and_gone_with_the_upload(
    world, private_storage, django_capture_on_commit_callbacks, monkeypatch
):
    """The dry run keeps the rows it checked for the apply beside the upload, sealed like it: the apply
    neither reads nor checks the file again."""
    rows = [person("K1", "髙橋 﨑子", birth="S55.12.3", end="2099-03-31", email="k1@example.jp"), person("K2")]
    job = validate(world.tenant_a, roster_csv(rows))
    kept = (private_storage / jobs.side_name(job)).read_bytes()
    assert kept.startswith(b"\x00HSEAL1\x00")
    for value in ("髙橋", "k1@example.jp", "1980-12-03", "2099-03-31"):
        assert value.encode() not in kept

    def read_again(*args, **kwargs):
        raise AssertionError("the apply read the file again")

    monkeypatch.setattr(roster_import, "records", read_again)
    with django_capture_on_commit_callbacks(execute=True):
        done = apply(world.tenant_a, job)
    assert done.state == Job.State.DONE and done.counts["applied"]["added"] == 2
    k1 = members(world.tenant_a)["K1"]
    assert (k1.name, k1.birth_date, k1.qualification_end, k1.email) == (
        "髙橋 﨑子",
        dt.date(1980, 12, 3),
        dt.date(2099, 3, 31),
        "k1@example.jp",
    )
    assert (k1.office.name, k1.department.name, k1.is_active) == ("東京本社", "営業部", True)
    assert not _stored(private_storage)  # the upload and the kept rows


def test_a_preview_whose_kept_rows_were_written_as_json_still_applies_from_them(
    world, private_storage, django_capture_on_commit_callbacks, monkeypatch
):
    """Dry runs before side files were written with marshal kept their rows as JSON: a preview confirmed
    across that upgrade is applied from its kept rows all the same."""
    with monkeypatch.context() as m:
        m.setattr(jobs, "_pack", lambda piece: json.dumps(piece, ensure_ascii=False).encode())
        job = validate(world.tenant_a, roster_csv([person("J1", birth="S55.12.3", end="2099-03-31"), person("J2")]))
    with tenant_context(world.tenant_a):
        del job.plan["kept_as"]  # as such a dry run left its plan
        Job.objects.filter(pk=job.pk).update(plan=job.plan)
    monkeypatch.setattr(roster_import, "records", lambda *a, **k: pytest.fail("the apply read the file again"))
    with django_capture_on_commit_callbacks(execute=True):
        done = apply(world.tenant_a, job)
    assert done.state == Job.State.DONE and done.counts["applied"]["added"] == 2
    j1 = members(world.tenant_a)["J1"]
    assert (j1.birth_date, j1.qualification_end, j1.department.name) == (
        dt.date(1980, 12, 3),
        dt.date(2099, 3, 31),
        "営業部",
    )


def test_a_checked_row_whose_office_was_removed_before_the_apply_is_not_written(world):
    with tenant_context(world.tenant_a):
        Office.objects.create(name="仮設事務所")
    job = validate(world.tenant_a, roster_csv([person("G1", office="仮設事務所", dept=""), person("G2")]))
    assert job.counts["added"] == 2
    with tenant_context(world.tenant_a):
        Office.objects.filter(name="仮設事務所").delete()
    done = apply(world.tenant_a, job)
    assert (done.counts["applied"]["added"], done.counts["applied"]["errors"]) == (1, 1)
    assert "G1" not in members(world.tenant_a) and "G2" in members(world.tenant_a)


def test_a_discarded_or_expired_preview_leaves_no_kept_rows(world, private_storage, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        discarded = validate(world.tenant_a, roster_csv([person("D1")]))
        stale = validate(world.tenant_a, roster_csv([person("D2")]))
    assert len(_stored(private_storage)) == 4  # two uploads, two side files
    with tenant_context(world.tenant_a), django_capture_on_commit_callbacks(execute=True):
        jobs.job_cancel(job_id=discarded.pk)
        Job.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - dt.timedelta(days=8))
        jobs.jobs_expire_unconfirmed(keep_days=django_settings.ROSTER_IMPORT_KEEP_DAYS)
    assert not _stored(private_storage)


def test_unconfirmed_checkup_uploads_expire_too_and_a_confirm_racing_the_sweep_wins(
    world, private_storage, django_capture_on_commit_callbacks, monkeypatch
):
    from checkups import imports
    from tests.checkups.test_imports import doc

    with tenant_context(world.tenant_a), django_capture_on_commit_callbacks(execute=True):
        checkup = imports.checkup_import_start(upload=io.BytesIO(doc()), file_name="h.xml",
                                               source=imports.SOURCE_XML, mapping_id=None, acting_user=None,
                                               enqueue=False)  # fmt: skip
        checkup = imports.checkup_import_validate(job_id=checkup.pk)
    racing = validate(world.tenant_a, roster_csv([person("R1")]))
    week_ago = timezone.now() - dt.timedelta(days=8)
    with tenant_context(world.tenant_a):
        Job.objects.filter(pk__in=[checkup.pk, racing.pk]).update(updated_at=week_ago)
        real_lock = jobs.job_lock

        def confirmed_meanwhile(*, job_id):  # the admin confirms between the sweep's read and its lock
            if job_id == racing.pk:
                Job.objects.filter(pk=job_id).update(state=Job.State.APPLYING)
            return real_lock(job_id=job_id)

        monkeypatch.setattr(jobs, "job_lock", confirmed_meanwhile)
        with django_capture_on_commit_callbacks(execute=True):
            jobs.jobs_expire_unconfirmed(keep_days=django_settings.ROSTER_IMPORT_KEEP_DAYS)
        checkup.refresh_from_db()
        racing.refresh_from_db()
    assert (checkup.state, checkup.error_code) == (Job.State.FAILED, "expired")
    assert not default_storage.exists(checkup.file)
    assert racing.state == Job.State.APPLYING and default_storage.exists(racing.file)


def test_an_import_whose_message_was_lost_is_handed_to_a_worker_again(world, django_capture_on_commit_callbacks):
    """Confirmed, but the apply task never reached a worker (a broker restart): the periodic resume finds
    the job idle and sends it again; a job still moving, or one just confirmed, is left alone."""
    from healthapp.tasks import jobs_resume_stalled_task

    job = validate(world.tenant_a, roster_csv([person("L1"), person("L2")]))
    with tenant_context(world.tenant_a):
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)  # the message is lost
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_resume_stalled_task(world.tenant_a.pk) == 0  # just confirmed: not idle yet
    with tenant_context(world.tenant_a):
        Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_resume_stalled_task(world.tenant_a.pk) == 1
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
    assert job.state == Job.State.DONE and {"L1", "L2"} <= members(world.tenant_a).keys()


def test_a_member_entered_by_hand_after_the_preview_is_updated_not_duplicated(world):
    job = validate(world.tenant_a, roster_csv([person("H1", "手入 花子")]))
    assert job.counts["added"] == 1
    with tenant_context(world.tenant_a):
        Member.objects.create(employee_number="H1", name="手入 はなこ")
    job = apply(world.tenant_a, job)
    assert (job.counts["applied"]["added"], job.counts["applied"]["updated"]) == (0, 1)
    with tenant_context(world.tenant_a):
        key = blind_index(world.tenant_a.pk, "employee-number", "H1")
        assert Member.objects.filter(employee_number_index=key).count() == 1
        assert member_get_by_employee_number("H1").name == "手入 花子"


def test_an_office_closed_after_the_preview_turns_its_rows_into_errors(world):
    with tenant_context(world.tenant_a):
        Office.objects.create(name="閉鎖予定支店")
    job = validate(world.tenant_a, roster_csv([person("O1", office="閉鎖予定支店", dept="")]))
    assert (job.counts["added"], job.counts["errors"]) == (1, 0)
    with tenant_context(world.tenant_a):
        Office.objects.filter(name="閉鎖予定支店").delete()
    job = apply(world.tenant_a, job)
    assert (job.counts["applied"]["added"], job.counts["applied"]["errors"]) == (0, 1)
    assert "O1" not in members(world.tenant_a)


def test_the_shipped_cp932_sample_shows_one_of_each_outcome(world):
    from pathlib import Path

    import accounts

    sample = Path(accounts.__file__).parent / "roster_templates" / "sample_roster_cp932.csv"
    job = validate(world.tenant_a, sample.read_bytes(), create_offices=True)
    assert job.plan["encoding"] == "cp932"
    assert [(e["row"], e["column"], e["code"]) for e in job.errors] == [(7, "birth_date", "date_outside_era")]
    assert job.counts["added"] == 5 and job.counts["new_offices"] == 1  # 大阪支社 is new in tenant A


# --- Blank cells ----------------------------------------------------------------------------------------


def test_a_blank_cell_keeps_the_stored_value_unless_the_upload_asks_to_clear(world):
    """A newcomer fills in the template with what they know: the blanks must not wipe what is on file.
    Clearing is a choice made on the upload (and shown on the preview)."""
    run(world.tenant_a, roster_csv([person("Z1", kana="ヤマダ ハナコ", birth="1990-01-02", sex="女",
                                           end="2099-03-31", email="z1@example.jp")]))  # fmt: skip
    sparse = roster_csv([person("Z1", kana="", birth="", sex="", end="2099-03-31", email="", dept="")])
    job = run(world.tenant_a, sparse)
    assert job.counts["applied"]["unchanged"] == 1 and job.counts["applied"]["updated"] == 0
    kept = members(world.tenant_a)["Z1"]
    assert (kept.kana_name, kept.birth_date, kept.sex, kept.email) == (
        "ヤマダ ハナコ", dt.date(1990, 1, 2), "female", "z1@example.jp")  # fmt: skip
    assert kept.department.name == "営業部"

    job = validate(world.tenant_a, sparse, clear_blanks=True)
    assert job.counts["updated"] == 1
    apply(world.tenant_a, job)
    cleared = members(world.tenant_a)["Z1"]
    assert (cleared.kana_name, cleared.birth_date, cleared.sex, cleared.email) == ("", None, "", "")
    assert cleared.department is None and cleared.relationship == "self"


def test_a_blank_relationship_keeps_family_and_makes_a_new_entry_self(world):
    header = ["保険者記号", "保険者番号", "続柄", "氏名", "性別", "生年月日"]
    run(world.tenant_b, roster_csv([["12", "345", "家族", "乙山 子", "女", "H20.2.2"]], header=header))
    job = run(world.tenant_b, roster_csv([["12", "345", "家族", "乙山 子", "女", "H20.2.2"],
                                          ["12", "346", "", "乙山 新", "男", "S50.1.1"]], header=header))  # fmt: skip
    assert (job.counts["applied"]["unchanged"], job.counts["applied"]["added"]) == (1, 1)
    with tenant_context(world.tenant_b):
        relationships = {m.name: m.relationship for m in Member.objects.all() if m.insurance_symbol == "12"}
    assert relationships == {"乙山 子": "family", "乙山 新": "self"}


def test_the_coverage_start_date_is_read_stored_and_checked_against_the_end(world):
    """資格取得日 decides whether someone was insured from a fiscal year's 1 April (特定健診の対象者)."""
    header = ["社員番号", "氏名", "生年月日", "性別", "資格取得日", "資格喪失日"]
    rows = [["S1", "取得 一郎", "1970-01-01", "男", "令和7年10月1日", ""],
            ["S2", "取得 二郎", "1970-01-01", "男", "2025-10-01", "2025-10-01"]]  # fmt: skip
    job = validate(world.tenant_a, roster_csv(rows, header=header))
    assert [(e["row"], e["column"], e["code"]) for e in job.errors] == [(3, "qualification_start", "start_after_end")]
    run(world.tenant_a, roster_csv(rows[:1], header=header))
    assert members(world.tenant_a)["S1"].qualification_start == dt.date(2025, 10, 1)
    run(world.tenant_a, roster_csv([["S1", "取得 一郎", "1970-01-01", "男", "", ""]], header=header))
    assert members(world.tenant_a)["S1"].qualification_start == dt.date(2025, 10, 1)  # a blank keeps it


def test_an_entry_turned_off_without_an_end_date_remembers_the_day_and_forgets_it_when_listed_again(world):
    run(world.tenant_a, roster_csv([person("T1"), person("T2")]))
    run(world.tenant_a, roster_csv([person("A0", "甲野 0"), person("T1")]), mode="full")  # T2 missing from the file
    today = timezone.localdate()
    roster = members(world.tenant_a)
    assert (roster["T2"].is_active, roster["T2"].inactive_since, roster["T1"].inactive_since) == (False, today, None)
    run(world.tenant_a, roster_csv([person("T2")]))
    assert (members(world.tenant_a)["T2"].is_active, members(world.tenant_a)["T2"].inactive_since) == (True, None)
