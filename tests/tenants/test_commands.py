"""Operator commands: create tenants and users, seed the demo, fail clearly on bad input."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Member, User
from accounts.selectors import member_get_by_employee_number
from tenants.context import tenant_context
from tenants.models import Tenant


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant(db):
    out = run(
        "create_tenant",
        "--kind",
        "insurer",
        "--name",
        "サンプル健康保険組合",
        "--slug",
        "sample-kenpo",
        "--contract-end",
        "2030-03-31",
    )
    tenant = Tenant.objects.get(slug="sample-kenpo")
    assert "sample-kenpo" in out
    assert tenant.kind == "insurer" and str(tenant.contract_end) == "2030-03-31" and tenant.is_active


def test_create_tenant_rejects_a_duplicate_slug_and_a_bad_date(db, world):
    with pytest.raises(CommandError, match="使用済み"):
        run("create_tenant", "--kind", "company", "--name", "x", "--slug", "tenant-a")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run("create_tenant", "--kind", "company", "--name", "x", "--slug", "new", "--contract-end", "31/03/2030")
    with pytest.raises(CommandError):
        run(
            "create_tenant",
            "--kind",
            "company",
            "--name",
            "x",
            "--slug",
            "new2",
            "--contract-start",
            "2030-01-01",
            "--contract-end",
            "2029-01-01",
        )


def test_create_user_with_generated_password_shown_once(db, world):
    out = run(
        "create_user",
        "--tenant",
        "tenant-a",
        "--email",
        "Nurse@A.example",
        "--role",
        "health_staff",
        "--employee-number",
        "A2",
        "--generate-password",
    )
    user = User.objects.get(email="nurse@a.example")
    password = out.split("): ")[-1].strip()
    assert user.tenant == world.tenant_a and user.role == "health_staff"
    assert user.check_password(password) and len(password) >= 12
    with tenant_context(world.tenant_a):
        assert member_get_by_employee_number("A2").user == user


def test_wrong_tenant_slug_fails_clearly_and_lists_known_ones(db, world):
    with pytest.raises(CommandError) as exc:
        run("create_user", "--tenant", "tenant-x", "--email", "a@x.example", "--role", "employee")
    assert "tenant-x" in str(exc.value) and "tenant-a" in str(exc.value)


def test_create_user_refuses_operator_with_tenant_and_staff_without(db, world):
    with pytest.raises(CommandError, match="--tenant"):
        run("create_user", "--tenant", "tenant-a", "--email", "op@x.example", "--role", "operator")
    with pytest.raises(CommandError, match="--tenant"):
        run("create_user", "--email", "hr@x.example", "--role", "hr_admin")


def test_create_user_refuses_an_existing_email_and_unknown_employee_number(db, world):
    with pytest.raises(CommandError, match="登録済み"):
        run("create_user", "--tenant", "tenant-a", "--email", "member@a.example", "--role", "employee")
    with pytest.raises(CommandError, match="社員番号"):
        run(
            "create_user",
            "--tenant",
            "tenant-a",
            "--email",
            "n@a.example",
            "--role",
            "employee",
            "--employee-number",
            "B1",
        )  # B1 exists, but in tenant B


def test_create_operator_without_tenant(db):
    out = run("create_user", "--email", "ops@healthapp.example", "--role", "operator")
    user = User.objects.get(email="ops@healthapp.example")
    assert user.tenant is None and user.is_staff and "shown once" in out


def test_seed_demo_creates_both_tenants_every_role_and_prints_working_logins(db):
    out = run("seed_demo")
    corp, kenpo = Tenant.objects.get(slug="demo-corp"), Tenant.objects.get(slug="demo-kenpo")
    assert corp.kind == "company" and kenpo.kind == "insurer"
    with tenant_context(corp):
        assert Member.objects.count() == 30
        assert Member.objects.values("office").distinct().count() == 2
    with tenant_context(kenpo):
        assert Member.objects.count() == 20
    roles = set(User.objects.values_list("role", flat=True))
    assert roles == {"employee", "physician", "health_staff", "hr_admin", "insurer_admin", "org_admin", "operator"}
    line = next(line for line in out.splitlines() if "org-admin@demo-corp.example" in line)
    password = line.split()[-1]
    assert User.objects.get(email="org-admin@demo-corp.example").check_password(password)
    assert "second factor at first login" in out and "var/mail/" in out  # how the privileged logins get in


def test_seed_demo_again_keeps_data_and_gives_fresh_passwords(db):
    first = run("seed_demo")
    second = run("seed_demo")
    assert Tenant.objects.filter(slug__startswith="demo-").count() == 2
    with tenant_context(Tenant.objects.get(slug="demo-corp")):
        assert Member.objects.count() == 30
    pick = lambda out: next(x for x in out.splitlines() if "employee@demo-corp" in x).split()[-1]  # noqa: E731
    assert pick(first) != pick(second)
    assert User.objects.get(email="employee@demo-corp.example").check_password(pick(second))


def test_seed_demo_gives_staff_the_labels_their_work_needs(db):
    from accounts import policy
    from accounts.labels import Perm

    run("seed_demo")
    corp = Tenant.objects.get(slug="demo-corp")
    with tenant_context(corp):
        physician = User.objects.get(email="physician@demo-corp.example")
        employee = User.objects.get(email="employee@demo-corp.example")
        assert policy.can(physician, Perm.CHECKUP_JUDGE)
        assert policy.scope(physician, Perm.MEMBER_VIEW, Member.objects.all()).count() == 30
        assert policy.permissions(employee) == set()
        entry = Member.objects.select_related("office", "department").get(user=employee)
        assert (entry.office.name, entry.department.name) == ("東京本社", "営業部")
    run("seed_demo")  # a second run adds no duplicate grants
    with tenant_context(corp):
        from accounts.models import LabelGrant

        assert LabelGrant.objects.count() == 3


def test_seed_demo_follow_ups_read_in_order_exam_opinion_visit(db):
    """就業判定の確認 of the demo: each opinion signed weeks after its exam, each visit after its opinion, some
    follow-ups still open past their due date (3 months from the opinion), none signed in the future."""
    from django.utils import timezone

    from checkups.models import FollowUpVisit, PhysicianOpinion

    run("seed_demo")
    with tenant_context(Tenant.objects.get(slug="demo-corp")):
        opinions = list(PhysicianOpinion.objects.select_related("record"))
        visits = list(FollowUpVisit.objects.select_related("opinion"))
    assert opinions and visits
    for opinion in opinions:
        signed = timezone.localtime(opinion.signed_at).date()
        assert opinion.record.exam_date < signed <= timezone.localdate(), (opinion.record.exam_date, signed)
    for visit in visits:
        assert timezone.localtime(visit.opinion.signed_at).date() <= visit.visited_on <= timezone.localdate()


def test_the_shipped_sample_csv_continues_the_demo_peoples_seeded_checkups(db):
    """A newcomer imports checkups/samples/sample_checkups.csv into demo-corp: each person's height is the one
    of their seeded checkups and their weight goes on from the last one, so the trend charts do not jump."""
    import csv

    from accounts.selectors import member_get_by_employee_number
    from checkups.imports import SAMPLE_CSV
    from checkups.models import CheckupRecord

    run("seed_demo")
    with SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as f:
        rows = {row["社員番号"]: row for row in csv.DictReader(f)}
    with tenant_context(Tenant.objects.get(slug="demo-corp")):
        for number in ("E00001", "E00007", "E00020"):
            records = CheckupRecord.objects.filter(member=member_get_by_employee_number(number))
            latest = records.order_by("-exam_date").first().result_values()
            assert {float(r.result_values()["height"]) for r in records} == {float(rows[number]["身長"])}
            assert abs(float(latest["weight"]) - float(rows[number]["体重"])) <= 0.1


def test_the_demo_has_people_in_good_health_too(db):
    """健診の集計 of the demo shows A and B, not only C or worse (the overall grade is the worst item)."""
    from checkups.models import Judgement

    run("seed_demo")
    with tenant_context(Tenant.objects.get(slug="demo-corp")):
        overall = list(Judgement.objects.values_list("overall", flat=True))
    share = sum(1 for grade in overall if grade in "AB" and grade) / len(overall)
    assert 0.2 <= share <= 0.5, share


def test_the_demo_insurer_has_a_checkup_year_to_follow_up(db):
    """特定健診の受診率と階層化 of the demo 健保 is not all 100 %: someone due had no checkup, one awaits its
    judgement, some are on medication, one joined and one left in the middle of a year."""
    from accounts.models import User
    from checkups import selectors

    run("seed_demo")
    nurse = User.objects.get(email="health-staff@demo-kenpo.example")
    with tenant_context(nurse.tenant):
        latest = selectors.guidance_summary(user=nurse, fiscal_year=2025).rows[-1]
        earlier = selectors.guidance_summary(user=nurse, fiscal_year=2024).rows[-1]
        insured = set(Member.objects.exclude(qualification_start=None).values_list("pk", flat=True))
        left = set(Member.objects.exclude(qualification_end=None).values_list("pk", flat=True))
    assert latest.examined < latest.eligible and latest.levels.get("未判定") == 1 and latest.medicated > 0
    assert len(insured) == len(left) == 1 and earlier.examined == earlier.eligible
    # 特定保健指導 under way for some targets, evaluated for others, not started for the rest: a rate under 100 %.
    assert 0 < latest.completed < latest.started < latest.targeted and 0 < latest.completion_rate < 100
