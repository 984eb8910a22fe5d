"""What the roster import tells the admin before it changes anything: how to write the file, who loses a
login, a preview gone stale, header problems by name, the offices it creates, and messages that say why."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import roster_import
from accounts.models import Member, Role, User
from accounts.services import member_create, user_create
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.test_roster_import import JA, person, roster_csv, run, validate
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.usefixtures("private_storage")
ADMIN_PASSWORD = TEST_PASSWORD + "!x"
EVERYONE_BUT_A0_A2 = [person("A1", "甲野 1"), person("HR1", "人事 太郎", dept="")]


@pytest.fixture
def hr_client(client, hr_admin):
    log_in(client, hr_admin.email, ADMIN_PASSWORD)
    return client


@pytest.fixture
def preview(hr_client, django_capture_on_commit_callbacks):
    """Upload through the page (validated at once, as the eager worker does); the job's id."""

    def upload(data: bytes, **fields) -> int:
        payload = {"file": SimpleUploadedFile("名簿.csv", data, content_type="text/csv"), "mode": "partial", **fields}
        with django_capture_on_commit_callbacks(execute=True):
            response = hr_client.post("/roster/import/", payload)
        assert response.status_code == 302, response.content.decode()
        return int(response.url.rstrip("/").rsplit("/", 1)[1])

    return upload


def job_page(client, job_id: int) -> str:
    return client.get(f"/roster/import/{job_id}/").content.decode()


def between(page: str, start: str, end: str) -> str:
    assert start in page, start
    return page.split(start, 1)[1].split(end, 1)[0]


def row_of(table: str, name: str) -> str:
    (row,) = [r for r in table.split("</tr>") if name in r]
    return row


# --- 1. Who loses a login ------------------------------------------------------------------------------


def test_the_deactivation_list_marks_logins_and_the_tick_counts_them(hr_client, world, preview):
    """A0 has an employee's login (member@a.example), A2 none; the org admin (admin@a.example) has no roster
    entry, so the tenant keeps them and nothing warns about it."""
    page = job_page(hr_client, preview(roster_csv(EVERYONE_BUT_A0_A2), mode="full"))
    table = between(page, 'data-testid="job-to-deactivate"', "</table>")
    assert "ログインあり" in row_of(table, "甲野 0") and 'data-testid="login-role"' not in row_of(table, "甲野 0")
    assert "ログインあり" not in row_of(table, "甲野 2")
    assert "反映すると 2 人の名簿とログインを無効化することを確認しました。うちログインのある人は 1 人です。" in page
    assert "組織管理者が一人もいなくなります" not in page
    hr_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # English sentences are spaced; the column is "Login"
    job_id = preview(roster_csv(EVERYONE_BUT_A0_A2), mode="full")
    page = job_page(hr_client, job_id)
    tick = " ".join(between(page, 'data-testid="job-acknowledge"', "</label>").split())
    assert "logins. Of them" in tick or "login. Of them" in tick, tick
    assert "<th>Login</th>" in between(page, 'data-testid="job-to-deactivate"', "</table>")
    assert ">To add<" in page and ">To deactivate<" in page and ">Added<" not in page  # nothing applied yet


def test_leaving_out_the_only_org_admin_names_their_role_and_warns_in_the_tick(hr_client, world, preview):
    with tenant_context(world.tenant_a):
        entry = member_create(employee_number="ORG1", name="組織 花子")
    user_create(email="org@a.example", role=Role.ORG_ADMIN, tenant=world.tenant_a, password=ADMIN_PASSWORD,
                member=entry)  # fmt: skip
    User.objects.filter(pk=world.admin_a.pk).update(is_active=False)  # the other org admin left earlier
    rows = [person(f"A{i}", f"甲野 {i}") for i in range(3)] + [person("HR1", "人事 太郎", dept="")]
    job_id = preview(roster_csv(rows), mode="full")
    page = job_page(hr_client, job_id)
    row = row_of(between(page, 'data-testid="job-to-deactivate"', "</table>"), "組織 花子")
    assert "ログインあり" in row and "組織管理者" in row
    tick = between(page, 'data-testid="job-acknowledge"', "</label>")
    assert (
        "うちログインのある人は 1 人です。" in tick
        and "反映するとこのテナントの組織管理者が一人もいなくなります。" in tick
    )
    assert 'data-testid="job-removes-last-org-admin"' in page

    User.objects.filter(pk=world.admin_a.pk).update(is_active=True)  # another org admin stays: no warning
    page = job_page(hr_client, job_id)
    assert "組織管理者が一人もいなくなります" not in page and "組織管理者" in page  # the role is still named


def test_the_preview_reads_the_logins_in_as_many_queries_for_many_people_as_for_few(hr_client, world, preview):
    def queries_for(people: int) -> int:
        with tenant_context(world.tenant_a):
            entries = [member_create(employee_number=f"Q{people}-{i}", name=f"丙野 {i}") for i in range(people)]
        for i, entry in enumerate(entries):
            user_create(email=f"q{people}-{i}@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a,
                        password=TEST_PASSWORD, member=entry)  # fmt: skip
        job_id = preview(roster_csv([person("HR1", "人事 太郎", dept="")]), mode="full")
        job_page(hr_client, job_id)  # the session's first reads
        with CaptureQueriesContext(connection) as queries:
            page = job_page(hr_client, job_id)
        assert page.count('data-testid="has-login"') >= people
        return len(queries)

    assert queries_for(2) == queries_for(9)


# --- 2. A stale full preview ---------------------------------------------------------------------------


def test_a_full_preview_is_refused_once_another_import_changed_the_roster(hr_client, world, preview):
    stale = preview(roster_csv(EVERYONE_BUT_A0_A2), mode="full")
    run(world.tenant_a, roster_csv([person("NEW1", "新人 一郎")]))  # applied meanwhile, in another tab
    page = hr_client.post(f"/roster/import/{stale}/apply/", {"acknowledge": "1"}, follow=True).content.decode()
    assert "名簿がプレビューの後に変更されました。もう一度アップロードして確認してください。" in page
    refused = hr_client.post(f"/api/v1/roster-imports/{stale}/apply/", {"acknowledge": True},
                             content_type="application/json")  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "roster_changed"
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=stale).state == Job.State.VALIDATED
        assert not Member.objects.filter(is_active=False).exists()  # nobody deactivated, NEW1 included


def test_a_partial_preview_still_applies_after_the_roster_changed(
    hr_client, world, preview, django_capture_on_commit_callbacks
):
    """Mode partial checks each chunk again when it writes it: nothing of its preview goes stale."""
    job_id = preview(roster_csv([person("P1", "丁野 一")]))
    run(world.tenant_a, roster_csv([person("NEW1", "新人 一郎")]))
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job_id}/apply/")
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=job_id).state == Job.State.DONE


def test_an_unchanged_roster_lets_the_full_preview_apply(hr_client, world, preview, django_capture_on_commit_callbacks):
    job_id = preview(roster_csv(EVERYONE_BUT_A0_A2), mode="full")
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job_id}/apply/", {"acknowledge": "1"})
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=job_id).state == Job.State.DONE
        assert sorted(str(m.employee_number) for m in Member.objects.filter(is_active=False)) == ["A0", "A2"]


# --- 3. How to write the file --------------------------------------------------------------------------


def words_of(table: dict[str, str], choices) -> list[str]:
    return [f"{label}: " + "、".join(w for w, v in table.items() if v == value) for value, label in choices.choices]


def test_the_upload_page_explains_the_file_with_the_values_the_import_reads(hr_client, settings):
    page = hr_client.get("/roster/import/").content.decode()
    guide = between(page, 'data-testid="roster-file-guide"', "</details>")
    assert "<summary>ファイルの書き方</summary>" in guide
    columns = between(guide, 'data-testid="roster-file-guide-columns"', "</table>")
    assert "<td>社員番号</td><td>employee_number</td><td><strong>必須</strong>" in columns
    assert "<td>氏名</td><td>name</td><td><strong>必須</strong>" in columns
    assert "保険証記号" not in columns and "続柄" not in guide  # a company's file
    sex = between(guide, 'data-testid="roster-file-guide-sex"', "</dd>")
    assert all(text in sex for text in words_of(roster_import.SEX_WORDS, Member.Sex))
    dates = between(guide, 'data-testid="roster-file-guide-dates"', "</dd>")
    assert all(example in dates for example in ("2024-04-01", "2024/4/1", "令和6年4月1日", "R6.4.1"))
    assert f"{settings.ROSTER_IMPORT_MAX_BYTES // 2**20} MB" in guide
    assert "ファイルにない人の名簿とログインを無効化します" in guide and "ファイルにない人はそのままです" in guide
    # On the English page the Japanese headers, words and dates it lists are marked as Japanese (WCAG 3.1.2).
    hr_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    guide = between(hr_client.get("/roster/import/").content.decode(), 'data-testid="roster-file-guide"', "</details>")
    assert '<td><span lang="ja">社員番号</span></td><td>employee_number</td>' in guide
    assert '<span lang="ja">男性</span>' in between(guide, 'data-testid="roster-file-guide-sex"', "</dd>")
    dates = between(guide, 'data-testid="roster-file-guide-dates"', "</dd>")
    assert '<span lang="ja">令和6年4月1日</span>' in dates
    assert "2024-04-01" in dates and 'lang="ja">2024-04-01' not in dates  # a Western date is no language's


def test_an_insurers_upload_page_explains_the_card_key_and_the_relationship(client, world):
    log_in(client, "outsider@b.example", ADMIN_PASSWORD)  # org admin of tenant B, an insurer
    guide = between(client.get("/roster/import/").content.decode(), 'data-testid="roster-file-guide"', "</details>")
    assert "保険証記号・保険証番号・続柄・性別・生年月日" in guide and "保険者番号" not in guide
    relationship = between(guide, 'data-testid="roster-file-guide-relationship"', "</dd>")
    assert all(text in relationship for text in words_of(roster_import._RELATIONSHIP, Member.Relationship))


def test_every_date_form_the_page_names_is_read():
    for example in roster_import.DATE_EXAMPLES:
        assert isinstance(roster_import.parse_date(example), dt.date), example


def test_the_company_template_leaves_out_the_insurance_card_columns(hr_client, world):
    card = {"保険証記号", "保険証番号", "枝番", "続柄", "insurance_symbol", "insurance_number", "insurance_branch",
            "relationship"}  # fmt: skip
    for lang in ("ja", "en"):
        header = hr_client.get(f"/roster/import/template.csv?lang={lang}").content.decode("utf-8-sig").split(",")
        assert not card & {h.strip() for h in header}, lang
    insurer_client = Client()
    log_in(insurer_client, "outsider@b.example", ADMIN_PASSWORD)  # org admin of tenant B, an insurer
    insurer = insurer_client.get("/roster/import/template.csv?lang=ja").content.decode("utf-8-sig")
    assert {"保険証記号", "保険証番号", "枝番", "続柄"} <= {h.strip() for h in insurer.split(",")}


# --- 4. Header problems by name, broken quoting by record -----------------------------------------------


def test_an_unknown_header_is_named_by_position_and_text_on_the_page_and_in_the_report(hr_client, world, preview):
    job_id = preview(roster_csv([[*person("N1"), "x"]], header=[*JA, "備考"]))
    page = job_page(hr_client, job_id)
    assert "10 列目（備考）" in page and "見出しに不明な列があります" in page
    report = hr_client.get(f"/roster/import/{job_id}/errors.csv").content.decode("utf-8-sig")
    assert "10 列目（備考）" in report


def test_a_long_header_text_is_cut_and_a_headerless_file_shows_no_cell(world):
    job = validate(world.tenant_a, roster_csv([["N1", "山田", "x"]], header=["社員番号", "氏名", "あ" * 60]))
    assert job.errors[0]["header"] == "あ" * 40 + "…"
    job = validate(world.tenant_a, roster_csv([person("N2")], header=person("N1", "山田 花子")))
    assert "header" not in job.errors[0]  # the first person's data, where the header should be


@pytest.mark.parametrize(
    "data",
    ['社員番号,氏名\nN1,山田\nN2,"山田\nN3,佐藤\n', '社員番号,氏名\nN1,山田\nN2,"山田"x\nN3,佐藤\n'],
    ids=["quote never closed", "text after the closing quote"],
)
def test_broken_quoting_names_the_record_where_it_broke(hr_client, world, preview, data):
    job_id = preview(data.encode())
    page = job_page(hr_client, job_id)
    assert 'data-row="3" data-code="csv_format"' in page and "CSV の形式が正しくありません" in page


# --- 5. The offices and departments it creates -----------------------------------------------------------


def test_the_preview_names_the_offices_and_departments_it_would_create(hr_client, world, preview):
    rows = [person("N1", office="名古屋支店", dept="総務部"), person("N2", office="名古屋支社", dept=""), person("N3")]
    job_id = preview(roster_csv(rows), create_offices="on")
    page = job_page(hr_client, job_id)
    offices = between(page, 'data-testid="job-new-offices"', "</dd>")
    assert "名古屋支店" in offices and "名古屋支社" in offices and "東京本社" not in offices
    assert "名古屋支店 / 総務部" in between(page, 'data-testid="job-new-departments"', "</dd>")
    api = hr_client.get(f"/api/v1/roster-imports/{job_id}/").json()
    assert api["new_offices"] == ["名古屋支店", "名古屋支社"] and ["名古屋支店", "総務部"] in api["new_departments"]


def test_the_named_new_offices_are_capped_and_the_page_gives_the_total(hr_client, world, preview):
    rows = [person(f"N{i}", office=f"支店{i:02d}", dept="") for i in range(60)]
    job_id = preview(roster_csv(rows), create_offices="on")
    with tenant_context(world.tenant_a):
        job = Job.objects.get(pk=job_id)
    assert job.counts["new_offices"] == 60 and len(job.plan["new_offices"]) == roster_import.NAMES_SHOWN
    assert "（全 60 件）" in between(job_page(hr_client, job_id), 'data-testid="job-new-offices"', "</dd>")


def test_the_applied_import_names_the_offices_and_departments_it_created(
    hr_client, world, preview, django_capture_on_commit_callbacks
):
    rows = [person("N1", office="名古屋支店", dept="総務部"), person("N2", dept="広報部"), person("N3")]
    job_id = preview(roster_csv(rows), create_offices="on")
    assert 'data-testid="job-created-offices"' not in job_page(hr_client, job_id)  # a preview creates nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert hr_client.post(f"/roster/import/{job_id}/apply/").status_code == 302
    page = job_page(hr_client, job_id)
    assert "作成した事業所・部署" in page
    assert between(page, 'data-testid="job-created-offices"', "</dd>").count('class="tag"') == 1
    assert "名古屋支店" in between(page, 'data-testid="job-created-offices"', "</dd>")
    departments = between(page, 'data-testid="job-created-departments"', "</dd>")
    assert "名古屋支店 / 総務部" in departments and "東京本社 / 広報部" in departments
    assert "営業部" not in departments  # N3's, already there
    api = hr_client.get(f"/api/v1/roster-imports/{job_id}/").json()
    assert api["created_offices"] == ["名古屋支店"] and api["new_offices"] == []
    assert sorted(api["created_departments"]) == [["名古屋支店", "総務部"], ["東京本社", "広報部"]]
    hr_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = job_page(hr_client, job_id)
    created = between(english, "Offices and departments created", "</dl>")
    assert '<span lang="ja">名古屋支店</span>' in created  # typed in Japanese: read as Japanese


# --- 6. Messages that say why -----------------------------------------------------------------------------


def test_a_birth_date_out_of_range_gives_the_range(hr_client, world, preview):
    page = job_page(hr_client, preview(roster_csv([person("N1", birth="1899-12-31")])))
    assert "生年月日は 1900-01-01 から今日までの日付で入力してください。" in page


def test_too_many_errors_gives_the_limit(hr_client, world, preview, settings):
    settings.ROSTER_IMPORT_MAX_ERRORS = 2
    page = job_page(hr_client, preview(roster_csv([person(f"N{i}", birth="x") for i in range(4)])))
    assert "エラーが 2 件を超えたため検証を中止しました。" in page


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1980/4/1 0:00", dt.date(1980, 4, 1)),
        ("1980/04/01 00:00", dt.date(1980, 4, 1)),
        ("1980-04-01 00:00:00", dt.date(1980, 4, 1)),
        ("S55年4月1日", dt.date(1980, 4, 1)),
        ("ｈ２年１月８日", dt.date(1990, 1, 8)),
        ("令和6年4月1日 0:00", dt.date(2024, 4, 1)),
    ],
)
def test_excel_date_times_at_midnight_and_letter_eras_with_kanji_units_are_read(text, expected):
    assert roster_import.parse_date(text) == expected


@pytest.mark.parametrize(
    "text, code",
    [
        ("1980/4/1 9:30", "date_format"),
        ("1980-04-01 00:00:01", "date_format"),
        ("1980/4/1 0:00 PM", "date_format"),
        ("S64年1月8日", "date_outside_era"),
    ],
)
def test_a_time_of_day_is_not_a_date_and_a_letter_era_keeps_its_span(text, code):
    with pytest.raises(ValueError, match=code):
        roster_import.parse_date(text)


def test_applying_a_job_applied_already_says_so(hr_client, world, preview, django_capture_on_commit_callbacks):
    job_id = preview(roster_csv([person("P1", "丁野 一")]))
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job_id}/apply/")
    again = hr_client.post(f"/roster/import/{job_id}/apply/", follow=True).content.decode()
    assert "この取り込みはすでに反映されています。" in again and "この取り込みは反映できません。" not in again


@pytest.mark.parametrize(
    "symbol, number",
    [("保険証記号", "保険証番号"), ("記号", "番号"), ("被保険者記号", "被保険者番号"), ("保険者記号", "保険者番号")],
)
def test_the_card_columns_read_by_the_cards_own_words_and_the_older_template_names(symbol, number):
    """The card says 記号・番号; 保険者番号 is the insurer's own number, read here only as the older template's name."""
    header = [symbol, number, "続柄", "氏名", "性別", "生年月日"]
    assert roster_import._read_header(header, insurer=True)[:2] == ["insurance_symbol", "insurance_number"]
