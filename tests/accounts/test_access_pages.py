"""Settings → access rights, the access review, the roster and teams, as their users see them."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import LabelGrant, Role, Team, TeamMembership
from accounts.services import member_create, user_create
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

ADMIN_PASSWORD = TEST_PASSWORD + "!x"


@pytest.fixture
def admin(client, world):
    log_in(client, "admin@a.example", ADMIN_PASSWORD)
    return client


@pytest.fixture
def salesperson(world):
    """An employee of 東京本社/営業部 with a login."""
    with tenant_context(world.tenant_a):
        member = member_create(
            employee_number="S-100", name="営業 一郎", office=world.office_a, department=world.department_a
        )
    return user_create(
        email="sales@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=TEST_PASSWORD, member=member
    )


def test_admin_grants_a_department_label_on_the_settings_screen(admin, world, salesperson):
    page = admin.get(f"/settings/access/?office={world.office_a.pk}").content.decode()
    assert "東京本社" in page and "この事業所にはまだ付与がありません。" in page
    response = admin.post(
        f"/settings/access/office/{world.office_a.pk}/new/",
        {"target_kind": "department", "target": "営業部", "labels": ["roster_viewer"], "scope": "department"},
    )
    assert response.status_code == 302
    listing = admin.get(response.url).content.decode()
    assert "部署: 営業部" in listing and "名簿閲覧" in listing and "所属部署" in listing
    member_client = Client()
    log_in(member_client, "sales@a.example", TEST_PASSWORD)
    roster = member_client.get("/roster/").content.decode()
    assert "営業 一郎" in roster and "甲野 0" in roster  # 営業部 members
    assert member_client.get("/").content.decode().count("/roster/") >= 1  # the menu now shows 名簿


def test_grant_form_shows_errors_in_plain_words_and_keeps_the_input(admin, world):
    response = admin.post(
        f"/settings/access/office/{world.office_a.pk}/new/",
        {"target_kind": "employee", "target": "NO-SUCH", "labels": ["auditor"], "scope": "self"},
    )
    text = response.content.decode()
    assert response.status_code == 200 and "この社員番号は名簿にありません。" in text
    assert 'value="NO-SUCH"' in text
    with tenant_context(world.tenant_a):
        assert LabelGrant.objects.count() == 0


def test_the_grant_form_makes_the_admin_choose_the_scope(admin, world, salesperson):
    url = f"/settings/access/office/{world.office_a.pk}/new/"
    select = admin.get(url).content.decode().split('name="scope"')[1].split("</select>")[0]
    assert '<option value="" selected>---------</option>' in select
    unchosen = admin.post(url, {"target_kind": "employee", "target": "S-100", "labels": ["physician"]})
    assert unchosen.status_code == 200 and "この項目は必須です。" in unchosen.content.decode()
    with tenant_context(world.tenant_a):
        assert not LabelGrant.objects.exists()


def test_the_grant_forms_groups_have_names_and_an_unknown_number_is_marked_on_its_field(admin, world):
    url = f"/settings/access/office/{world.office_a.pk}/new/"
    page = admin.get(url).content.decode()
    assert "<legend>付与対象</legend>" in page and "<legend>ラベル</legend>" in page  # a screen reader names each group
    refused = admin.post(
        url, {"target_kind": "employee", "target": "X-404", "labels": ["physician"], "scope": "tenant"}
    )
    text = refused.content.decode()
    assert refused.status_code == 200 and re.search(
        r'id="id_target_error"[^>]*>\s*<p class="field-error">この社員番号は名簿にありません。', text
    )
    assert re.search(
        r'<input[^>]*name="target"[^>]*aria-invalid="true"|<input[^>]*aria-invalid="true"[^>]*name="target"', text
    )


def test_labels_that_do_nothing_at_the_chosen_scope_are_refused_or_flagged(admin, world, salesperson):
    """ログ監査 for 本人のみ reads no log (the audit log is tenant-wide only): refused, saying why; 人事担当 for
    a department keeps its roster viewing there, and the page says what it leaves out."""
    url = f"/settings/access/office/{world.office_a.pk}/new/"
    refused = admin.post(url, {"target_kind": "employee", "target": "S-100", "labels": ["auditor"], "scope": "self"})
    text = refused.content.decode()
    assert "「ログ監査」は組織全体に及ぶラベルのため、範囲「全体」のときだけ働きます。" in text
    with tenant_context(world.tenant_a):
        assert not LabelGrant.objects.exists()
    given = admin.post(
        url, {"target_kind": "employee", "target": "S-100", "labels": ["hr_staff"], "scope": "department"}, follow=True
    )
    page = given.content.decode()
    assert "ラベルを付与しました。" in page
    assert "この範囲では 監査ログの閲覧、名簿・健診結果の取り込み は働きません" in page
    assert admin.post(url, {"target_kind": "employee", "target": "S-100", "labels": ["points_admin"],
                            "scope": "tenant"}).status_code == 200  # fmt: skip  # not offered: nothing uses it yet
    with tenant_context(world.tenant_a):
        assert LabelGrant.objects.count() == 1
    assert "ポイント管理" not in admin.get(url).content.decode()


def test_edit_and_revoke_with_confirmation(admin, world, salesperson):
    admin.post(
        f"/settings/access/office/{world.office_a.pk}/new/",
        {"target_kind": "employee", "target": "S-100", "labels": ["roster_viewer"], "scope": "self"},
    )
    with tenant_context(world.tenant_a):
        grant = LabelGrant.objects.get()
    admin.post(f"/settings/access/{grant.pk}/edit/", {"labels": ["manager", "roster_viewer"], "scope": "office"})
    with tenant_context(world.tenant_a):
        grant.refresh_from_db()
        assert grant.labels == ["manager", "roster_viewer"] and grant.scope == "office"
    confirm = admin.get(f"/settings/access/{grant.pk}/delete/").content.decode()
    assert "この付与を取り消しますか？" in confirm
    with tenant_context(world.tenant_a):
        assert LabelGrant.objects.filter(pk=grant.pk).exists()  # a GET never deletes
    admin.post(f"/settings/access/{grant.pk}/delete/")
    with tenant_context(world.tenant_a):
        assert not LabelGrant.objects.filter(pk=grant.pk).exists()


def test_access_review_lists_effective_labels_sources_and_flags(admin, world, salesperson):
    today = timezone.localdate()
    admin.post(
        f"/settings/access/office/{world.office_a.pk}/new/",
        {"target_kind": "department", "target": "営業部", "labels": ["roster_viewer"], "scope": "department",
         "valid_until": (today + dt.timedelta(days=10)).isoformat()},
    )  # fmt: skip
    page = admin.get("/settings/access-review/").content.decode()
    assert "sales@a.example" in page and "名簿閲覧" in page and "部署 営業部" in page  # in words, not codes
    assert "department:" not in page and "ロールの既定" in page
    assert 'data-flag="grant_expiring_30_days"' in page
    assert 'data-flag="privileged_without_mfa"' in page or "設定済み" in page
    csv_text = admin.get("/settings/access-review/?format=csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("user_id,email,role,labels")
    assert "sales@a.example" in csv_text and "department:営業部" in csv_text  # the CSV keeps the codes
    sales = next(line for line in csv_text.splitlines() if "sales@a.example" in line).split(",")
    assert len(sales) == 9 and sales[7] in ("yes", "no") and "grant_expiring_30_days" in sales[8]
    admin_row = next(line for line in csv_text.splitlines() if "admin@a.example" in line).split(",")
    assert admin_row[6].endswith("+09:00")  # last login in JST, as the page shows it


def test_access_review_flags_ended_qualification_and_inactivity(world, salesperson):
    with tenant_context(world.tenant_a):
        member = salesperson.member
        member.qualification_end = timezone.localdate() - dt.timedelta(days=1)
        member.save()
        from accounts.selectors import access_review

        row = next(r for r in access_review() if r.email == "sales@a.example")
        # Never logged in says so (it read "no login for 90 days" even for a login made yesterday).
        assert "qualification_ended" in row.flags and "never_logged_in" in row.flags
        assert "inactive_90_days" not in row.flags
        salesperson.last_login = timezone.now() - dt.timedelta(days=91)
        salesperson.save(update_fields=["last_login"])
        row = next(r for r in access_review() if r.email == "sales@a.example")
    assert "inactive_90_days" in row.flags and "never_logged_in" not in row.flags


def test_access_review_lists_grants_to_employee_numbers_without_a_login(admin, world):
    """A grant to someone who has not registered yet takes effect the day they do: the review shows it."""
    today = timezone.localdate()
    with tenant_context(world.tenant_a):
        member_create(employee_number="N-7", name="未登録 七子", office=world.office_a, department=world.department_a)
    for labels, until in ((["physician"], None), (["auditor"], today - dt.timedelta(days=1))):
        admin.post(
            f"/settings/access/office/{world.office_a.pk}/new/",
            {"target_kind": "employee", "target": "N-7", "labels": labels, "scope": "tenant",
             "valid_until": until.isoformat() if until else ""},
        )  # fmt: skip
    page = admin.get("/settings/access-review/").content.decode()
    row = page[page.index("data-no-login") : page.index("</tr>", page.index("data-no-login"))]
    assert "（ログインなし）" in row and "社員番号 N-7" in row and 'data-flag="no_login"' in row
    assert page.count("data-no-login") == 1  # the expired grant is past review
    csv_text = admin.get("/settings/access-review/?format=csv").content.decode("utf-8-sig")
    line = next(line for line in csv_text.splitlines() if "employee:N-7" in line).split(",")
    assert line[0] == "" and line[1] == "" and line[7] == "" and line[8] == "no_login"
    # 権限設定 names the person beside the number for an admin who may see the roster, and says no login yet.
    settings_page = admin.get(f"/settings/access/?office={world.office_a.pk}").content.decode()
    assert "N-7（未登録 七子）" in settings_page and 'data-testid="no-login"' in settings_page
    assert "東京本社（付与 2 件）" in settings_page  # the office list says where grants are


def test_access_review_flags_an_employee_with_a_label_over_others_and_no_second_factor(world, salesperson):
    from accounts.selectors import access_review
    from accounts.services import label_grant_create

    with tenant_context(world.tenant_a):
        assert "privileged_without_mfa" not in next(r for r in access_review() if r.email == "sales@a.example").flags
        label_grant_create(office=world.office_a, target_kind="department", target="営業部", labels=["manager"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
        assert "privileged_without_mfa" in next(r for r in access_review() if r.email == "sales@a.example").flags


def test_access_review_matches_each_users_rights_in_a_fixed_number_of_queries(world, salesperson):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_otp.plugins.otp_static.models import StaticDevice

    from accounts import policy
    from accounts.models import User
    from accounts.selectors import access_review
    from accounts.services import label_grant_create

    today = timezone.localdate()

    def review() -> tuple[list, int]:
        with CaptureQueriesContext(connection) as queries:
            rows = access_review()
        return rows, len(queries)

    with tenant_context(world.tenant_a):
        admin_a = User.objects.get(email="admin@a.example")
        label_grant_create(
            office=world.office_a, target_kind="department", target="営業部", labels=["roster_viewer"],
            scope_="department", acting_user=admin_a,
        )  # fmt: skip
        label_grant_create(
            office=world.office_a, target_kind="employee", target="S-100", labels=["manager"], scope_="self",
            acting_user=admin_a, valid_until=today - dt.timedelta(days=1),
        )  # fmt: skip
        StaticDevice.objects.create(user=admin_a, name="backup", confirmed=True)
        _, few = review()
        for i in range(12):
            member = member_create(
                employee_number=f"Q-{i}", name=f"照会 {i}", office=world.office_a, department=world.department_a
            )
            user_create(
                email=f"q{i}@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=TEST_PASSWORD,
                member=member,
            )  # fmt: skip
        rows, many = review()
        assert many == few  # not one more query per login
        for row in rows:
            if row.user_id is None:  # a grant to an employee number without a login
                continue
            user = User.objects.get(pk=row.user_id)
            expected = policy.effective_grants(user, on=today)
            assert row.labels == [g.label for g in expected], row.email
            assert row.mfa == (row.email == "admin@a.example")
    by_email = {r.email: r for r in rows}
    assert by_email["sales@a.example"].labels == ["roster_viewer"]  # the expired grant is not counted
    assert by_email["q3@a.example"].sources == ["department:営業部"]


def test_access_review_csv_defuses_formulas(admin, world):
    user_create(
        email="=cmd|calc@a.example".replace("|", ""), role=Role.EMPLOYEE, tenant=world.tenant_a, password=TEST_PASSWORD
    )
    csv_text = admin.get("/settings/access-review/?format=csv").content.decode("utf-8-sig")
    assert "'=cmdcalc@a.example" in csv_text


def test_access_review_command(world, salesperson):
    out = io.StringIO()
    call_command("access_review", "--tenant", "tenant-a", stdout=out)
    assert "sales@a.example" in out.getvalue() and "admin@a.example" in out.getvalue()
    out = io.StringIO()
    call_command("access_review", "--tenant", "tenant-a", "--csv", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("user_id,email")


def test_teams_create_request_approve_leave_dissolve(admin, world, salesperson):
    member_client = Client()
    log_in(member_client, "member@a.example", TEST_PASSWORD)
    response = member_client.post(
        "/teams/",
        {"name": "朝ラン部", "description": "毎朝走ります", "join_policy": "approval", "display_name": "はやお"},
    )
    assert response.status_code == 302
    with tenant_context(world.tenant_a):
        team = Team.objects.get(name="朝ラン部")
    sales_client = Client()
    log_in(sales_client, "sales@a.example", TEST_PASSWORD)
    assert "朝ラン部" in sales_client.get("/teams/").content.decode()
    before = sales_client.get(f"/teams/{team.pk}/").content.decode()
    assert "はやお" not in before and "誰が参加しているかは、チームのメンバーにだけ表示されます。" in before
    # A name the team already uses is refused, what was typed stays; no request made.
    taken = sales_client.post(f"/teams/{team.pk}/join/", {"display_name": " はやお"})
    assert taken.status_code == 400
    page = taken.content.decode()
    assert "この表示名はチームの中ですでに使われています。" in page and 'value=" はやお"' in page
    missing = sales_client.post(f"/teams/{team.pk}/join/", {"display_name": " "})
    assert missing.status_code == 400
    with tenant_context(world.tenant_a):
        assert not TeamMembership.objects.filter(team=team, user=salesperson).exists()
    sales_client.post(f"/teams/{team.pk}/join/", {"display_name": "営業のたろう"})
    with tenant_context(world.tenant_a):
        request = TeamMembership.objects.get(team=team, user=salesperson)
    assert request.status == "pending"
    # Only the creator (or a team admin) decides.
    sales_client.post(f"/teams/{team.pk}/approve/", {"membership": request.pk})
    with tenant_context(world.tenant_a):
        assert TeamMembership.objects.get(pk=request.pk).status == "pending"
    detail = member_client.get(f"/teams/{team.pk}/").content.decode()
    # The team shows the names people gave it, never their e-mail addresses.
    assert "営業のたろう" in detail and "承認" in detail
    main = detail[detail.index("<main") :]  # (the header shows the viewer's own address)
    assert "sales@a.example" not in main and "member@a.example" not in main
    member_client.post(f"/teams/{team.pk}/approve/", {"membership": request.pk})
    with tenant_context(world.tenant_a):
        assert TeamMembership.objects.get(pk=request.pk).status == "member"
    assert "朝ラン部" in sales_client.get("/").content.decode()  # on the member's home page
    sales_client.post(f"/teams/{team.pk}/leave/")
    with tenant_context(world.tenant_a):
        assert TeamMembership.objects.get(pk=request.pk).status == "left"
    # The only team admin stays (else nobody decides, and they could let themselves back in).
    refused = member_client.post(f"/teams/{team.pk}/leave/", follow=True).content.decode()
    assert "チームの管理者はあなただけのため、抜けられません。" in refused
    assert "組織の管理者に解散を依頼してください" in refused  # an employee cannot dissolve it: who can, is named
    with tenant_context(world.tenant_a):
        assert TeamMembership.objects.get(team=team, user=world.member_a).status == "member"
    # Dissolving needs team.manage: the member cannot, the org admin can.
    member_client.post(f"/teams/{team.pk}/dissolve/")
    with tenant_context(world.tenant_a):
        assert Team.objects.get(pk=team.pk).dissolved_at is None
    admin.post(f"/teams/{team.pk}/dissolve/")
    with tenant_context(world.tenant_a):
        assert Team.objects.get(pk=team.pk).dissolved_at is not None
    assert member_client.get(f"/teams/{team.pk}/").status_code == 404


def test_an_org_admin_who_is_a_teams_only_admin_is_told_they_can_dissolve_it(admin, world):
    admin.post("/teams/", {"name": "囲碁部", "description": "", "join_policy": "open", "display_name": "管理人"})
    with tenant_context(world.tenant_a):
        team = Team.objects.get(name="囲碁部")
    refused = admin.post(f"/teams/{team.pk}/leave/", follow=True).content.decode()
    assert "チームが不要になったら、このページの下から解散できます。" in refused
    assert "組織の管理者に解散を依頼" not in refused  # they are that admin


def test_a_creator_who_left_decides_nothing(world, salesperson):
    """(Left before the last admin had to stay.) No say once out: not over others, not over their own return."""
    from accounts.services import team_can_decide, team_create, team_request_join

    with tenant_context(world.tenant_a):
        team = team_create(
            name="昼ヨガ", description="", join_policy="approval", display_name="ヨガ", acting_user=world.member_a
        )
        TeamMembership.objects.filter(team=team, user=world.member_a).update(status="left")
        team_request_join(team=team, display_name="ヨガ", acting_user=world.member_a)
        assert not team_can_decide(team=team, user=world.member_a)


def test_open_team_joins_at_once_and_duplicates_are_refused(world, salesperson):
    client = Client()
    log_in(client, "sales@a.example", TEST_PASSWORD)
    form = {"name": "ウォーキング", "description": "", "join_policy": "open", "display_name": "歩く人"}
    client.post("/teams/", form)
    page = client.post("/teams/", form).content.decode()
    assert "同じ名前のチームがすでにあります。" in page
    other = Client()
    log_in(other, "member@a.example", TEST_PASSWORD)
    with tenant_context(world.tenant_a):
        team = Team.objects.get(name="ウォーキング")
    other.post(f"/teams/{team.pk}/join/", {"display_name": "歩く人２"})
    with tenant_context(world.tenant_a):
        assert TeamMembership.objects.get(team=team, user=world.member_a).status == "member"
    assert "歩く人2" in other.get(f"/teams/{team.pk}/").content.decode()  # NFKC: the full-width digit as typed in ASCII


def test_teams_of_another_tenant_are_invisible(world):
    from accounts.services import team_create

    with tenant_context(world.tenant_b):
        team = team_create(
            name="B社のチーム", description="", join_policy="open", display_name="B", acting_user=world.outsider_b
        )
    client = Client()
    log_in(client, "member@a.example", TEST_PASSWORD)
    assert "B社のチーム" not in client.get("/teams/").content.decode()
    assert client.get(f"/teams/{team.pk}/").status_code == 404
    assert client.post(f"/teams/{team.pk}/join/", {"display_name": "A"}).status_code == 404
    assert client.get(f"/api/v1/teams/{team.pk}/").status_code == 404


def test_the_roster_pages_through_everyone_and_marks_who_is_no_longer_active(admin, world):
    """A 20,000-person roster used to stop at 200 rows without a word; people deactivated by an import
    looked like everyone else."""
    from accounts.selectors import ROSTER_PAGE_SIZE

    with tenant_context(world.tenant_a):
        for i in range(ROSTER_PAGE_SIZE):
            member_create(employee_number=f"P{i:04d}", name=f"頁 {i}", is_active=i != ROSTER_PAGE_SIZE - 1)
    total = len(world.roster_a) + ROSTER_PAGE_SIZE
    first = admin.get("/roster/").content.decode()
    assert first.count('data-testid="member-state"') == ROSTER_PAGE_SIZE
    assert f"1 / 2 ページ（全 {total} 件）" in first
    last = admin.get("/roster/?page=2").content.decode()
    assert "頁 99" in last and "無効" in last
    searched = admin.post("/roster/", {"q": "P0007"})
    assert searched.status_code == 302 and "P0007" not in searched.url  # the typed number stays out of addresses
    found = admin.get(searched.url).content.decode()
    assert "頁 7" in found and "全 1 件" in found
    assert "P0007" not in re.findall(r'href="([^"]*)"', found).__str__()  # nor in the page's links
    stale = admin.get("/roster/?s=forgotten", follow=True).content.decode()
    assert "この検索は期限が切れました" in stale and f"全 {total} 件" in stale
    home = admin.get("/").content.decode()
    assert f'data-testid="active-member-count">{total - 1}<' in home


def test_a_team_whose_first_membership_fails_is_not_left_behind(world, monkeypatch):
    """The team and its creator's membership are written together (a team nobody administers otherwise)."""
    from accounts.services import team_create

    def broken(self, *args, **kwargs):
        raise RuntimeError("membership write failed")

    monkeypatch.setattr(TeamMembership, "save", broken)
    with tenant_context(world.tenant_a), pytest.raises(RuntimeError):
        team_create(name="孤立", description="", join_policy="open", display_name="X", acting_user=world.member_a)
    with tenant_context(world.tenant_a):
        assert not Team.objects.filter(name="孤立").exists()
