"""The demo data set: two fictional tenants, every role, ~50 roster entries (Faker ja_JP, fixed seed)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from faker import Faker

from accounts.models import Member, Role, User
from accounts.services import label_grant_create, member_create, password_generate, user_create
from tenants.context import tenant_context
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_ensure_structure

SEED = 20261121

DEMO_TENANTS = [
    {
        "slug": "demo-corp",
        "kind": Tenant.Kind.COMPANY,
        "name": "デモ商事株式会社",
        "offices": {"東京本社": ["営業部", "総務部", "人事部", "開発部"], "大阪支社": ["営業部", "製造部"]},
        "members": 30,
        "users": [Role.EMPLOYEE, Role.PHYSICIAN, Role.HEALTH_STAFF, Role.HR_ADMIN, Role.ORG_ADMIN],
        # role → (label, scope) granted to that demo login's roster entry (org_admin holds its label by role)
        "grants": {
            Role.PHYSICIAN: ("physician", "tenant"),
            Role.HEALTH_STAFF: ("health_staff", "office"),
            Role.HR_ADMIN: ("hr_staff", "tenant"),
        },
    },
    {
        "slug": "demo-kenpo",
        "kind": Tenant.Kind.INSURER,
        "name": "デモ健康保険組合",
        "offices": {"デモ商事 加入事業所": ["本社"], "デモ物流 加入事業所": ["本社"]},
        "members": 20,
        "users": [Role.EMPLOYEE, Role.HEALTH_STAFF, Role.INSURER_ADMIN, Role.ORG_ADMIN],
        "grants": {Role.HEALTH_STAFF: ("health_staff", "tenant"), Role.INSURER_ADMIN: ("hr_staff", "tenant")},
    },
]
OPERATOR_EMAIL = "operator@ops.healthapp.example"


@dataclass(frozen=True)
class DemoLogin:
    tenant: str
    role: str
    email: str
    password: str


def demo_email(slug: str, role: str) -> str:
    return f"{role.replace('_', '-')}@{slug}.example"


@transaction.atomic
def seed_demo() -> list[DemoLogin]:
    """Create the demo tenants once; on every call give each demo login a fresh password.

    Returns the logins with their passwords so the caller can show them once.
    """
    fake = Faker("ja_JP")
    fake.seed_instance(SEED)
    rng = random.Random(SEED)  # noqa: S311  (reproducible fictional data, not a secret)
    logins: list[DemoLogin] = []
    for spec in DEMO_TENANTS:
        tenant = Tenant.objects.filter(slug=spec["slug"]).first()
        created = tenant is None
        if created:
            tenant = tenant_create(kind=spec["kind"], name=spec["name"], slug=spec["slug"])
            _seed_roster(tenant, spec, fake, rng)
        for role in spec["users"]:
            logins.append(_ensure_login(tenant, role))
        if created:
            _seed_grants(tenant, spec["grants"])
            _seed_checkups(tenant, rng)
            _seed_follow_ups(tenant)
            _seed_guidance(tenant)
    logins.append(_ensure_login(None, Role.OPERATOR))
    return logins


def _seed_roster(tenant: Tenant, spec: dict, fake: Faker, rng: random.Random) -> None:
    offices = tenant_ensure_structure(tenant=tenant, offices=spec["offices"])
    symbol = f"{rng.randint(1000, 9999)}"
    with tenant_context(tenant):
        first_office = next(iter(offices.values()))
        for i in range(spec["members"]):
            office = rng.choice(list(offices.values()))
            department = rng.choice(list(office.departments.all()))
            if i == 0:  # the demo employee's own entry: 東京本社 / 営業部, where the access-rights demo starts
                office, department = first_office, first_office.departments.order_by("pk").first()
            sex = rng.choice([Member.Sex.MALE, Member.Sex.FEMALE])
            if sex == Member.Sex.MALE:
                last, first = fake.last_name_pair(), fake.first_name_male_pair()
            else:
                last, first = fake.last_name_pair(), fake.first_name_female_pair()
            family = i % 7 == 6
            birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 42))
            coverage = {}
            if spec["kind"] == Tenant.Kind.INSURER:
                # A 健保's roster as 特定健診 sees it: dependants of 40 and over among them, one person who
                # joined in the middle of a year and one who left in the middle of the last one.
                if family:
                    birth = dt.date(min(birth.year, 1975), birth.month, min(birth.day, 28))
                if i == 9:
                    coverage = {"qualification_start": dt.date(2024, 10, 1)}
                elif i == 11:
                    coverage = {"qualification_end": dt.date(2025, 9, 30), "is_active": False}
            member_create(
                employee_number=f"E{i + 1:05d}",
                office=office,
                department=department,
                relationship=Member.Relationship.FAMILY if family else Member.Relationship.SELF,
                name=f"{last[0]} {first[0]}",
                kana_name=f"{last[1]} {first[1]}",
                birth_date=birth,
                sex=sex,
                insurance_symbol=symbol,
                insurance_number=str(rng.randint(1, 99999)),
                insurance_branch="01" if family else "00",
                address=fake.address(),
                phone=fake.phone_number(),
                **coverage,
            )


def _seed_checkups(tenant: Tenant, rng: random.Random) -> None:
    """Three fiscal years of fictional checkups per roster entry, judged, so every page has data."""
    from decimal import Decimal

    from checkups import items
    from checkups.mhlw_sample import bmi_of
    from checkups.models import CheckupRecord
    from checkups.services import age_in_fiscal_year, checkup_judge, checkup_record_save

    catalogue = items.load().items
    bodies = _sample_csv_bodies() if tenant.slug == SAMPLE_CSV_TENANT else {}
    # A 健保's checkups are 特定健診; in the last year some people have not had theirs, and one awaits its
    # judgement, so 特定健診の受診率と階層化 shows a rate under 100 % and a 未判定.
    insurer = tenant.kind == Tenant.Kind.INSURER
    program = CheckupRecord.Program.SPECIFIC if insurer else CheckupRecord.Program.REGULAR
    awaiting = None  # the one record left unjudged: someone due (40-74) in the last year

    with tenant_context(tenant):
        for index, member in enumerate(Member.objects.order_by("pk")):
            base = {
                "height": rng.uniform(150, 182), "weight": rng.uniform(48, 92), "waist": rng.uniform(70, 98),
                "systolic": rng.uniform(105, 150), "diastolic": rng.uniform(62, 96), "hdl": rng.uniform(34, 80),
                "ldl": rng.uniform(80, 170), "triglycerides_fasting": rng.uniform(50, 260),
                "ast": rng.uniform(14, 45), "alt": rng.uniform(10, 55), "ggt": rng.uniform(12, 110),
                "glucose_fasting": rng.uniform(82, 128), "hba1c": rng.uniform(5.0, 6.6),
            }  # fmt: skip
            if index % 3 == 2:  # a third in good health (A or B on every item, two years of drift included),
                base |= _healthy(rng, base["height"])  # so 健診の集計 has A and B to show, as a real roster does
            if body := bodies.get(member.employee_number):  # the shipped sample CSV's autumn checkup continues
                base["height"], base["weight"] = body[0], body[1] / 1.04  # the spring one of the last year here
            for years_ago in (2, 1, 0):
                if insurer and years_ago == 0 and index % 6 == 5 and member.user_id is None:
                    continue
                drift = 1 + 0.02 * (2 - years_ago)
                values = {  # as a provider reports them: to each item's own decimals (blood pressure in mmHg)
                    item: items.round_half_up(Decimal(value * (1 if item == "height" else drift)),
                                              catalogue[item].precision)
                    for item, value in base.items()
                }  # fmt: skip
                values["bmi"] = bmi_of(values["weight"], values["height"])
                exam_date = dt.date(2025 - years_ago, 5, 10 + rng.randint(0, 15))
                answers = {"hours_since_meal": "12", "smoker": rng.random() < 0.2}
                if insurer and index % 5 == 3:
                    answers["medication_bp"] = True  # on blood-pressure medication: 情報提供 by rule
                record = checkup_record_save(
                    member=member, exam_date=exam_date, program=program, values=values, questionnaire=answers,
                    institution="デモ健診センター", source="demo",
                )  # fmt: skip
                due = member.birth_date and 40 <= age_in_fiscal_year(member.birth_date, 2025) <= 74
                if insurer and years_ago == 0 and awaiting is None and member.user_id is None and due:
                    awaiting = record
                    continue
                checkup_judge(record=record)
        # One correction by the provider, so 結果の訂正履歴 and the note on マイ健診結果 have something to show.
        record = (
            CheckupRecord.objects.filter(member__user__email=demo_email(tenant.slug, Role.EMPLOYEE))
            .order_by("-exam_date")
            .first()
        )
        if record is not None:
            values = record.result_values()
            values["systolic"] += 12
            checkup_record_save(
                member=record.member, exam_date=record.exam_date, program=record.program, values=values,
                questionnaire=record.questionnaire, institution=record.institution, source="demo",
            )  # fmt: skip
            checkup_judge(record=record)


def _healthy(rng: random.Random, height: float) -> dict[str, float]:
    """Values in the A or B band of every graded item, low enough that the seed's 4 % drift keeps them there."""
    return {
        "weight": rng.uniform(19.5, 23.5) * (height / 100) ** 2, "systolic": rng.uniform(100, 133),
        "diastolic": rng.uniform(60, 85), "hdl": rng.uniform(42, 80), "ldl": rng.uniform(65, 132),
        "triglycerides_fasting": rng.uniform(40, 140), "ast": rng.uniform(12, 33), "alt": rng.uniform(8, 38),
        "ggt": rng.uniform(10, 75), "glucose_fasting": rng.uniform(75, 104), "hba1c": rng.uniform(4.8, 5.7),
    }  # fmt: skip


SAMPLE_CSV_TENANT = "demo-corp"  # checkups/samples/sample_checkups.csv is this roster's E00001–E00020


def _sample_csv_bodies() -> dict[str, tuple[float, float]]:
    """Employee number → (height, weight) in the shipped sample CSV, so that a newcomer importing it sees
    each person's trend go on from their seeded checkups instead of jumping to another body."""
    import csv

    from checkups import imports

    with imports.SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as f:
        return {row["社員番号"]: (float(row["身長"]), float(row["体重"])) for row in csv.DictReader(f)}


def _seed_follow_ups(tenant: Tenant) -> None:
    """Where the tenant has a physician: opinions asking for a follow-up on some of the latest year's
    D/E records (the rest stay in the review queue), about half of them reported done, so 就業判定の確認
    and the completion rate on 健診の集計 have something to show."""
    from checkups.models import CheckupRecord, PhysicianOpinion
    from checkups.services import follow_up_visit_record, physician_opinion_record

    physician = User.objects.filter(email=demo_email(tenant.slug, Role.PHYSICIAN)).first()
    hr = User.objects.filter(email=demo_email(tenant.slug, Role.HR_ADMIN)).first()
    if physician is None or hr is None:
        return
    rng = random.Random(SEED + 8)  # noqa: S311  (its own stream: the next tenant's data stays as it was)
    with tenant_context(tenant):
        latest = CheckupRecord.objects.order_by("-fiscal_year").values_list("fiscal_year", flat=True).first()
        records = CheckupRecord.objects.filter(
            fiscal_year=latest, judgements__overall__in=["D", "E"], member__user__isnull=True
        ).distinct()  # people with a demo login stay in the physician's queue for the walkthrough
        for i, record in enumerate(records.order_by("pk")[:16]):
            opinion = physician_opinion_record(
                record=record, fitness="normal", follow_up=rng.choice(["recheck", "detailed", "consult"]),
                opinion="", restrictions=[], acting_user=physician,
            )  # fmt: skip
            # Signed weeks after the exam, as it would have been, not today: the visits and the due date (3
            # months from the opinion) read in order, some visits in time, the rest now overdue.
            today = timezone.localdate()
            signed = min(record.exam_date + dt.timedelta(days=rng.randint(14, 28)), today)
            signed_at = dt.datetime.combine(signed, dt.time(10, 0), tzinfo=timezone.get_current_timezone())
            PhysicianOpinion.objects.filter(pk=opinion.pk).update(signed_at=min(signed_at, timezone.now()))
            if i % 2 == 0:
                visited = min(signed + dt.timedelta(days=rng.randint(14, 80)), today)
                follow_up_visit_record(record=record, visited_on=visited, acting_user=hr)


def _seed_guidance(tenant: Tenant) -> None:
    """Where the tenant has a 保健師: 特定保健指導 recorded for most of the latest year's targets (some
    evaluated, some under way, one ended early; the rest not started), so the targets list and the 実施率 on
    特定健診の受診率と階層化 have something to show."""
    from checkups import selectors
    from checkups.models import CheckupRecord
    from checkups.services import guidance_support_record

    nurse = User.objects.filter(email=demo_email(tenant.slug, Role.HEALTH_STAFF)).first()
    if nurse is None:
        return
    with tenant_context(tenant):
        targets = selectors.guidance_targets(user=nurse, page=1).page
        for i, target in enumerate(list(targets)[:12]):
            started = target.exam_date + dt.timedelta(days=30 + 3 * i)
            kind = ("completed", "in_progress", None, "completed", "dropped", None)[i % 6]
            if kind is None:
                continue
            ended = {"completed": selectors.guidance_evaluation_from(started) + dt.timedelta(days=7),
                     "dropped": started + dt.timedelta(days=40)}.get(kind)  # fmt: skip
            record = CheckupRecord.objects.get(pk=target.record_id)
            guidance_support_record(
                record=record, acting_user=nurse, status=kind, started_on=started,
                method=("individual", "remote")[i % 2], ended_on=ended,
                goal_met=(i % 4 == 0) if kind == "completed" else None,
            )  # fmt: skip


def _seed_grants(tenant: Tenant, grants: dict[str, tuple[str, str]]) -> None:
    """Give the demo staff the labels their work needs, granted by the demo org admin."""
    admin = User.objects.get(email=demo_email(tenant.slug, Role.ORG_ADMIN))
    with tenant_context(tenant):
        for role, (label, scope_) in grants.items():
            member = Member.objects.select_related("office").get(user__email=demo_email(tenant.slug, role))
            label_grant_create(
                office=member.office, target_kind="employee", target=member.employee_number, labels=[label],
                scope_=scope_, acting_user=admin,
            )  # fmt: skip


def _ensure_login(tenant: Tenant | None, role: str) -> DemoLogin:
    email = demo_email(tenant.slug, role) if tenant else OPERATOR_EMAIL
    password = password_generate()
    user = User.objects.filter(email=email).first()
    if user is None:
        member = None
        if tenant is not None:
            # Link each demo login to a roster entry of its own, in order.
            with tenant_context(tenant):
                member = Member.objects.filter(user__isnull=True).order_by("pk").first()
        user_create(email=email, role=role, tenant=tenant, password=password, member=member)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    return DemoLogin(tenant=tenant.slug if tenant else "-", role=role, email=email, password=password)


@dataclass(frozen=True)
class DemoRegistration:
    """What a newcomer types on the registration pages (fictional data, printed by seed_demo)."""

    kind: str  # "card" (保険証) or "employee" (社員番号)
    tenant: str
    fields: dict[str, str]


def demo_registration_samples() -> list[DemoRegistration]:
    """One unregistered dependant of the 健保 (card data) and one unregistered employee of the company
    (employee number + birth date + the company's chosen attribute), so a newcomer can register."""
    from tenants.models import TenantSecurityPolicy

    samples: list[DemoRegistration] = []
    kenpo = Tenant.objects.filter(slug="demo-kenpo").first()
    if kenpo is not None:
        with tenant_context(kenpo):
            dependant = (
                Member.objects.filter(relationship=Member.Relationship.FAMILY, user__isnull=True, is_active=True)
                .exclude(insurance_card_index=None)
                .order_by("pk")
                .first()
            )
            if dependant is not None:
                card = {
                    "記号 / symbol": dependant.insurance_symbol,
                    "番号 / number": dependant.insurance_number,
                    "枝番 / branch": dependant.insurance_branch,
                    "続柄 / relationship": str(Member.Relationship(dependant.relationship).label),
                    "性別 / sex": str(Member.Sex(dependant.sex).label),
                    "生まれた年 / birth year": str(dependant.birth_date.year),
                    "生まれた月 / birth month": str(dependant.birth_date.month),
                }
                samples.append(DemoRegistration("card", kenpo.slug, card))
    corp = Tenant.objects.filter(slug="demo-corp").first()
    if corp is not None:
        with tenant_context(corp):
            policy = TenantSecurityPolicy.objects.first() or TenantSecurityPolicy()
            employee = (
                Member.objects.filter(relationship=Member.Relationship.SELF, user__isnull=True, is_active=True)
                .exclude(employee_number_index=None)
                .order_by("-pk")
                .first()
            )
            if employee is not None:
                attribute = policy.registration_attribute
                check_item = f"確認項目 / check item ({policy.get_registration_attribute_display()})"
                proof = {
                    "社員番号 / employee number": employee.employee_number,
                    "生年月日 / birth date": employee.birth_date.isoformat(),
                    check_item: getattr(employee, attribute),
                }
                samples.append(DemoRegistration("employee", corp.slug, proof))
    return samples
