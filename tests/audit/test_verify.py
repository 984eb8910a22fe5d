"""verify_audit: a clean chain passes; a changed, missing or rewritten event is found at its seq."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.canonical import event_document, event_hash
from audit.services import iter_chain_rows

from .conftest import tamper


def verify(tenant) -> str:
    """Run the command for one tenant; returns its output, raises CommandError on a break."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", "--tenant", tenant.slug, stdout=out, stderr=err)
    except CommandError as exc:
        raise CommandError(f"{exc}\n{err.getvalue()}") from None
    return out.getvalue()


def test_an_untouched_chain_verifies(tamperable):
    assert f"chain {tamperable.pk}: OK (5 events, last seq 5)" in verify(tamperable)


def test_a_changed_event_is_reported_at_its_seq_and_the_command_fails(tamperable):
    tamper("UPDATE audit_auditevent SET target_id = '999' WHERE chain = %s AND seq = 3", [str(tamperable.pk)])
    with pytest.raises(CommandError) as raised:
        verify(tamperable)
    assert f"{tamperable.pk}@3" in str(raised.value)
    assert "BROKEN at seq 3: hash does not match" in str(raised.value)


def test_a_changed_event_with_a_recomputed_hash_breaks_the_next_link(tamperable):
    chain = str(tamperable.pk)
    from audit.services import chain_scope

    with chain_scope(tamperable):
        row = next(r for r in iter_chain_rows(chain) if r["seq"] == 3)
    row["outcome"] = "failure"
    forged = event_hash(event_document(row))
    tamper("UPDATE audit_auditevent SET outcome = 'failure', hash = %s WHERE chain = %s AND seq = 3", [forged, chain])
    with pytest.raises(CommandError, match="BROKEN at seq 4: prev_hash"):
        verify(tamperable)


def test_a_deleted_event_is_reported_as_a_gap(tamperable):
    tamper("DELETE FROM audit_auditevent WHERE chain = %s AND seq = 2", [str(tamperable.pk)])
    with pytest.raises(CommandError, match=r"BROKEN at seq 2: gap: seq 2\.\.2 missing"):
        verify(tamperable)


def test_a_deleted_last_event_disagrees_with_the_head(tamperable):
    tamper("DELETE FROM audit_auditevent WHERE chain = %s AND seq = 5", [str(tamperable.pk)])
    with pytest.raises(CommandError, match="BROKEN at seq 5: head says seq 5 but the events end at seq 4"):
        verify(tamperable)


def test_a_rewritten_tail_disagrees_with_the_shipped_head(tamperable):
    """Rewriting events 3..5 with fresh hashes (and the head) fools the chain, not the shipped anchor."""
    from audit.services import chain_scope, ship_pending

    chain = str(tamperable.pk)
    ship_pending()  # into this test's own archive folder (tests/conftest.py)
    with chain_scope(tamperable):
        rows = list(iter_chain_rows(chain))
    prev = rows[1]["hash"]
    for row in rows[2:]:
        row["details"] = {"rewritten": True}
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(event_document(row))
        tamper(
            "UPDATE audit_auditevent SET details = %s, prev_hash = %s, hash = %s WHERE chain = %s AND seq = %s",
            [json.dumps(row["details"]), row["prev_hash"], row["hash"], chain, row["seq"]],
        )
    tamper("UPDATE audit_auditchain SET hash = %s WHERE chain = %s", [prev, chain])
    with pytest.raises(CommandError, match="BROKEN at seq 5: event differs from the shipped"):
        verify(tamperable)


def test_an_unknown_tenant_slug_is_an_error(db):
    with pytest.raises(CommandError, match="no-such-tenant"):
        call_command("verify_audit", "--tenant", "no-such-tenant")
