"""Expired self-registrations do not stay around: a daily task (and an operator command) deletes them in
every tenant, leaves live ones alone, and audits one event with the count and nothing about the people."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Member
from accounts.services import member_create
from accounts.tasks import registration_purge_all, registration_purge_task
from audit.models import AuditEvent, chain_key
from audit.services import chain_scope
from tenants.context import tenant_context
from tenants.models import PendingRegistration, Tenant

LINK_RE = re.compile(r"http://testserver(/accounts/register/confirm/[^/\s]+/)")


def pending(tenant, member, *, email: str, hours: float, used: bool = False) -> PendingRegistration:
    """A registration waiting for its link; ``hours`` until the link expires (negative: already expired)."""
    now = timezone.now()
    with tenant_context(tenant):
        return PendingRegistration.objects.create(
            member_uid=member.uid,
            email=email,
            password_hash="!",
            token_hash=f"{email:0<64}"[:64],
            expires_at=now + dt.timedelta(hours=hours),
            used_at=now - dt.timedelta(hours=1) if used else None,
        )


def emails_left(tenant) -> set[str]:
    with tenant_context(tenant):
        return set(PendingRegistration.objects.values_list("email", flat=True))


def purge_events(tenant) -> list[AuditEvent]:
    with chain_scope(tenant):
        events = AuditEvent.objects.filter(chain=chain_key(tenant.pk), action="auth.registration.purged")
        return list(events.order_by("seq"))


@pytest.fixture
def rows(world):
    """Tenant A: one expired, one expired after use, one live. Tenant B: the expired row of the shared
    world (pending@b.example) and one live."""
    pending(world.tenant_a, world.roster_a[1], email="old@a.example", hours=-2)
    pending(world.tenant_a, world.roster_a[2], email="used@a.example", hours=-1, used=True)
    pending(world.tenant_a, world.roster_a[2], email="live@a.example", hours=20)
    pending(world.tenant_b, world.roster_b[2], email="live@b.example", hours=1)
    assert emails_left(world.tenant_b) == {"pending@b.example", "live@b.example"}
    return world


def test_daily_task_deletes_expired_rows_in_every_tenant_and_keeps_live_ones(rows):
    registration_purge_all.delay()
    assert emails_left(rows.tenant_a) == {"live@a.example"}
    assert emails_left(rows.tenant_b) == {"live@b.example"}


def test_one_tenants_purge_leaves_other_tenants_alone(rows):
    registration_purge_task.delay(rows.tenant_a.pk)
    assert emails_left(rows.tenant_a) == {"live@a.example"}
    assert emails_left(rows.tenant_b) == {"pending@b.example", "live@b.example"}


def test_rows_of_a_suspended_tenant_are_purged_too(rows):
    Tenant.objects.filter(pk=rows.tenant_b.pk).update(status=Tenant.Status.SUSPENDED)
    registration_purge_all.delay()
    assert emails_left(rows.tenant_b) == {"live@b.example"}


def test_purge_is_one_audit_event_per_tenant_with_the_count_and_no_personal_data(rows):
    registration_purge_all.delay()
    [event_a] = purge_events(rows.tenant_a)
    [event_b] = purge_events(rows.tenant_b)
    assert event_a.details == {"deleted": 2} and event_b.details == {"deleted": 1}
    assert event_a.actor_id is None and event_a.target_type == "tenant" and event_a.target_id == str(rows.tenant_a.pk)
    for event in (event_a, event_b):
        recorded = f"{event.target_id} {event.details}"
        assert "@" not in recorded and not any(str(m.uid) in recorded for m in rows.roster_a + rows.roster_b)


def test_nothing_expired_means_no_event(rows):
    registration_purge_all.delay()
    registration_purge_all.delay()  # the second run finds nothing left
    assert len(purge_events(rows.tenant_a)) == 1 and len(purge_events(rows.tenant_b)) == 1


def test_beat_runs_the_purge_daily():
    from celery.schedules import crontab
    from django.conf import settings

    from healthapp.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["registration-purge"]
    assert entry["task"] == "accounts.tasks.registration_purge_all" and entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab) and entry["schedule"].hour == {0}


def test_operator_command_dry_run_counts_and_deletes_nothing(rows):
    out = StringIO()
    call_command("purge_registrations", "--dry-run", stdout=out)
    assert "tenant-a: would delete 2" in out.getvalue() and "tenant-b: would delete 1" in out.getvalue()
    assert emails_left(rows.tenant_a) == {"old@a.example", "used@a.example", "live@a.example"}
    assert not purge_events(rows.tenant_a)


def test_operator_command_for_one_tenant(rows):
    out = StringIO()
    call_command("purge_registrations", "--tenant", "tenant-b", stdout=out)
    assert out.getvalue().strip() == "tenant-b: deleted 1"
    assert emails_left(rows.tenant_b) == {"live@b.example"}
    assert emails_left(rows.tenant_a) == {"old@a.example", "used@a.example", "live@a.example"}


def test_a_purged_link_reads_like_any_expired_one(client, world, settings):
    """A newcomer who clicks their link after the purge gets the usual 'invalid or expired' page."""
    from django.core.cache import cache

    cache.clear()  # registration rate limits live in the cache
    with tenant_context(world.tenant_b):
        member_create(
            name="乙山 花子",
            relationship=Member.Relationship.FAMILY,
            sex=Member.Sex.FEMALE,
            birth_date=dt.date(2012, 4, 17),
            insurance_symbol="1234",
            insurance_number="56",
        )
    password = "Kenko-Daiichi-42"
    client.post(
        "/accounts/register/",
        {"insurance_symbol": "1234", "insurance_number": "56", "relationship": "family", "sex": "female",
         "birth_year": "2012", "birth_month": "4", "email": "hanako@example.jp", "password": password,
         "password_confirm": password},
    )  # fmt: skip
    link = LINK_RE.search(mail.outbox[-1].body).group(1)
    assert "登録を完了する" in client.get(link).content.decode()

    with tenant_context(world.tenant_b):
        PendingRegistration.objects.filter(email="hanako@example.jp").update(
            expires_at=timezone.now() - dt.timedelta(minutes=1)
        )
    registration_purge_all.delay()
    assert "hanako@example.jp" not in emails_left(world.tenant_b)
    refused = client.post(link)
    assert refused.status_code == 400
    assert "このリンクは無効か、有効期限が切れているか、すでに使われています。" in refused.content.decode()
