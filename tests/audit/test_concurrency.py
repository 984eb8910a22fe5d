"""Concurrent writers on PostgreSQL (threads, each with its own connection) keep one gap-free chain."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection

import audit
from audit.services import chain_scope, verify_chain
from tenants.context import tenant_context

from .conftest import events_of

pytestmark = pytest.mark.postgres

WRITERS = 6
EACH = 15


def test_concurrent_appends_to_one_tenant_never_fork_the_chain(committed_world):
    tenant = committed_world.tenant_a
    before = len(events_of(tenant))
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(EACH):
                with tenant_context(tenant):
                    audit.record(action="member.viewed", target_type="member", target_id=n * 100 + i)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = events_of(tenant)
    assert len(stored) == before + WRITERS * EACH
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(stored))
    with chain_scope(tenant):
        assert verify_chain(str(tenant.pk)).ok
