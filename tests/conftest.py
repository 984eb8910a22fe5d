"""Shared fixtures: the threat model in people.

Tenant A has an org admin (``admin_a``) and an employee (``member_a``); tenant B has ``outsider_b``.
On PostgreSQL the suite runs as the *application* role (not owner, not superuser), so row-level
security is really in force; only database creation, migrations and flush use the owner role.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings

from healthapp.db import use_app_role, use_owner_role

ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
TEST_PASSWORD = "Corr3ct-Horse-Battery"


def pytest_collection_modifyitems(config, items):
    # PostgreSQL and Redis tests run in the second pass of .ci/run, which sets
    # HEALTHAPP_TEST_REQUIRE_SERVICES=1: there a missing service is an error, never a skip.
    if os.environ.get("HEALTHAPP_TEST_REQUIRE_SERVICES") == "1":
        if not ON_POSTGRES or not os.environ.get("REDIS_URL"):
            raise pytest.UsageError("HEALTHAPP_TEST_REQUIRE_SERVICES=1 needs DATABASE_URL=postgres://… and REDIS_URL")
        return
    skip_pg = pytest.mark.skip(reason="needs DATABASE_URL=postgres://… (runs in the PostgreSQL pass)")
    skip_redis = pytest.mark.skip(reason="needs REDIS_URL (runs in the PostgreSQL + Redis pass)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not os.environ.get("REDIS_URL"):
            item.add_marker(skip_redis)


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        use_owner_role()
        db_cfg = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        use_app_role()
    yield
    with django_db_blocker.unblock():
        use_owner_role()
        teardown_databases(db_cfg, verbosity=0)


@pytest.fixture(autouse=True)
def _fast_hasher_and_eager_celery(settings, tmp_path):
    from healthapp.crypto.keyring import forget_cached_keys

    # Each test's shipped audit batches in its own folder: tenant ids repeat across tests and runs, and
    # verify_audit compares every chain with what the archive holds.
    settings.AUDIT_ARCHIVE_DIR = tmp_path / "audit-archive"

    forget_cached_keys()  # rolled-back tests reuse tenant ids; a real process never sees stale keys
    from django.core.cache import cache

    cache.delete_many([f"rl:login_failed:ip:{ip}" for ip in ("127.0.0.1", "-")])  # failed logins of earlier tests
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from healthapp.celery import app

    app.conf.task_always_eager = True
    yield
    from django.utils import translation

    # A request in English leaves English active on this thread (the locale middleware activates per
    # request and never resets): the next test must start in Japanese, as every request does.
    translation.activate(settings.LANGUAGE_CODE)


@dataclass
class World:
    tenant_a: object
    tenant_b: object
    office_a: object
    department_a: object
    admin_a: object
    member_a: object
    outsider_b: object
    roster_a: list
    roster_b: list


def build_world():
    """Create tenants A and B with offices, roster entries and logins (works inside any DB test)."""
    from accounts.models import Role
    from accounts.services import member_create, user_create
    from tenants.context import tenant_context
    from tenants.services import department_create, office_create, tenant_create

    tenant_a = tenant_create(kind="company", name="テナントA", slug="tenant-a")
    tenant_b = tenant_create(kind="insurer", name="テナントB", slug="tenant-b")
    with tenant_context(tenant_a):
        office_a = office_create(name="東京本社")
        department_a = department_create(office=office_a, name="営業部")
        roster_a = [
            member_create(employee_number=f"A{i}", name=f"甲野 {i}", office=office_a, department=department_a)
            for i in range(3)
        ]
    with tenant_context(tenant_b):
        office_b = office_create(name="大阪支社")
        roster_b = [member_create(employee_number=f"B{i}", name=f"乙山 {i}", office=office_b) for i in range(5)]
    admin_a = user_create(email="admin@a.example", role=Role.ORG_ADMIN, tenant=tenant_a, password=TEST_PASSWORD + "!x")
    member_a = user_create(
        email="member@a.example", role=Role.EMPLOYEE, tenant=tenant_a, password=TEST_PASSWORD, member=roster_a[0]
    )
    outsider_b = user_create(
        email="outsider@b.example",
        role=Role.ORG_ADMIN,
        tenant=tenant_b,
        password=TEST_PASSWORD + "!x",
        member=roster_b[0],
    )
    _fill_every_tenant_table(tenant_b, roster_b, outsider_b)
    return World(tenant_a, tenant_b, office_a, department_a, admin_a, member_a, outsider_b, roster_a, roster_b)


def _fill_every_tenant_table(tenant, roster, org_admin) -> None:
    """A row in each remaining tenant table of tenant B, so the row-level-security tests can show that
    every table hides rows that exist (tests/tenants/test_rls_postgres.py)."""
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from accounts.services import label_grant_create, team_create
    from checkups.models import CheckupCsvMapping, FollowUpVisit, GradeSnapshot, GuidanceSupport, PhysicianOpinion
    from checkups.services import checkup_judge, checkup_record_save
    from healthapp.models import Job
    from tenants.context import tenant_context
    from tenants.models import IpAllowlistEntry, PendingRegistration, TenantSecurityPolicy

    with tenant_context(tenant):
        TenantSecurityPolicy.objects.create()
        IpAllowlistEntry.objects.bulk_create([IpAllowlistEntry(cidr="0.0.0.0/0"), IpAllowlistEntry(cidr="::/0")])
        PendingRegistration.objects.create(
            member_uid=roster[1].uid, email="pending@b.example", password_hash="!", token_hash="0" * 64,
            expires_at=timezone.now(),
        )  # fmt: skip
        label_grant_create(
            office=roster[1].office, target_kind="employee", target=roster[1].employee_number, labels=["roster_viewer"],
            scope_="self", acting_user=org_admin,
        )  # fmt: skip
        team_create(
            name="B社の歩こう会", description="", join_policy="approval", display_name="幹事", acting_user=org_admin
        )  # + membership
        Job.objects.create(kind=Job.Kind.ROSTER, file="jobs/none.csv", file_sha256="0" * 64, created_by=org_admin)
        for systolic in ("118", "120"):  # the second save is a correction: the first value is kept
            record = checkup_record_save(
                member=roster[1],
                exam_date=dt.date(2025, 5, 1),
                program="regular",
                values={"systolic": Decimal(systolic)},
            )
        checkup_judge(record=record)
        opinion = PhysicianOpinion.objects.create(
            record=record, fitness="normal", follow_up="recheck", signed_by=org_admin
        )
        FollowUpVisit.objects.create(
            record=record, opinion=opinion, status="done", visited_on=dt.date(2025, 6, 1), recorded_by=org_admin
        )
        GuidanceSupport.objects.create(
            record=record, level="動機付け支援", status="in_progress", started_on=dt.date(2025, 6, 2),
            method="individual", recorded_by=org_admin,
        )  # fmt: skip
        CheckupCsvMapping.objects.create(provider="B社の健診機関", mapping={"社員番号": "employee_number"})
        GradeSnapshot.objects.create(
            fiscal_year=2025, group=":", people=5, grades={"A": 5}, published_at=timezone.now()
        )


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def committed_world(transactional_db):
    """Like ``world`` but committed, for tests that look through a second connection or thread."""
    return build_world()


def log_in(client, email: str, password: str, **extra):
    """Log in through the real login page (django-axes needs the request); returns the response.

    After a successful password step it follows the redirect once. A user who must pass MFA (every
    role but employee) lands on enrolment or verification: this gives them a confirmed TOTP device,
    submits a valid code on the real verification page and returns that page's response (a 302 to the
    page the login was heading for, like the login's). Enrolment itself is tested in tests/accounts/test_mfa.py.
    """
    response = client.post("/accounts/login/", {"username": email, "password": password}, **extra)
    if response.status_code != 302:
        return response
    landing = client.get(response.url, **extra)
    if landing.status_code != 302 or not landing.url.startswith("/accounts/mfa/"):
        return response
    from urllib.parse import parse_qs, urlsplit

    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    user = User.objects.get(email__iexact=email.strip())
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    next_url = parse_qs(urlsplit(landing.url).query).get("next", ["/"])[0]
    code = f"{totp(device.bin_key):06d}"
    return client.post("/accounts/mfa/verify/", {"code": code, "next": next_url}, **extra)


OPS_PASSWORD = TEST_PASSWORD + "!ops-x"


@pytest.fixture
def operator(db):
    """An operator (no tenant) logged in to the ops admin: (user, client)."""
    from django.test import Client

    from accounts.models import Role
    from accounts.services import user_create

    user = user_create(email="ops@ops.example", role=Role.OPERATOR, tenant=None, password=OPS_PASSWORD)
    client = Client()
    assert log_in(client, "ops@ops.example", OPS_PASSWORD).status_code == 302  # password + TOTP
    return user, client


@pytest.fixture
def private_storage(settings, tmp_path):
    """Uploads go to a temporary folder instead of var/files."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-protocol server (moto's server mode) on a free local port, spoken to over HTTP."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
