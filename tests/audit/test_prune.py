"""Retention: pruning removes only events that are past retention, shipped, and on a verified chain."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

import audit
from audit.models import AuditChain
from audit.services import chain_scope, ship_pending
from tenants.context import tenant_context

from .conftest import events_of, tamper


@pytest.fixture
def expired(settings):
    settings.AUDIT_RETENTION_MONTHS = 0  # everything recorded before now is past retention


def test_only_shipped_events_are_pruned_and_the_chain_still_verifies(committed_world, expired):
    tenant = committed_world.tenant_a
    ship_pending()  # into this test's own archive folder (tests/conftest.py)
    with tenant_context(tenant):
        audit.record(action="member.viewed", target_type="member", target_id=1)  # seq 4, not shipped
    out = StringIO()
    call_command("prune_audit", stdout=out)
    assert f"chain {tenant.pk}: deleted 3 events through seq 3" in out.getvalue()
    assert [e.seq for e in events_of(tenant)] == [4]
    with chain_scope(tenant):
        head = AuditChain.objects.get(chain=str(tenant.pk))
    assert (head.pruned_seq, head.shipped_seq, head.seq) == (3, 3, 4)
    verified = StringIO()
    call_command("verify_audit", "--tenant", tenant.slug, stdout=verified)
    assert f"chain {tenant.pk}: OK (1 events, last seq 4)" in verified.getvalue()
    pruned = [e for e in events_of(None, action="audit.pruned") if e.target_id == str(tenant.pk)]
    assert [e.details for e in pruned] == [{"through_seq": 3, "deleted": 3}]


def test_nothing_is_pruned_before_it_is_shipped_or_while_inside_retention(committed_world, settings):
    out = StringIO()
    call_command("prune_audit", stdout=out)  # nothing shipped yet
    settings.AUDIT_RETENTION_MONTHS = 13
    call_command("prune_audit", stdout=out)
    assert "deleted" not in out.getvalue()
    assert len(events_of(committed_world.tenant_a)) == 3


def test_dry_run_deletes_nothing(committed_world, expired):
    ship_pending()  # into this test's own archive folder (tests/conftest.py)
    out = StringIO()
    call_command("prune_audit", "--dry-run", stdout=out)
    assert f"chain {committed_world.tenant_a.pk}: would delete events through seq 3" in out.getvalue()
    assert len(events_of(committed_world.tenant_a)) == 3


def test_a_chain_that_does_not_verify_is_not_pruned(tamperable, expired):
    ship_pending()  # into this test's own archive folder (tests/conftest.py)
    tamper("UPDATE audit_auditevent SET target_id = 'x' WHERE chain = %s AND seq = 2", [str(tamperable.pk)])
    err = StringIO()
    call_command("prune_audit", stdout=StringIO(), stderr=err)
    assert f"chain {tamperable.pk}: refused: chain does not verify at seq 2" in err.getvalue()
    assert len(events_of(tamperable)) == 5


def test_a_chain_pruned_through_its_head_still_verifies(committed_world, expired):
    tenant = committed_world.tenant_a
    ship_pending()
    call_command("prune_audit", stdout=StringIO())
    assert events_of(tenant) == []
    verified = StringIO()
    call_command("verify_audit", "--tenant", tenant.slug, stdout=verified)
    assert f"chain {tenant.pk}: OK (0 events, last seq 3)" in verified.getvalue()
