"""audit.record: what an event carries, how events chain, and what it refuses to carry."""

from __future__ import annotations

import pytest

import audit
from audit.canonical import event_document, event_hash
from audit.models import GENESIS_HASH, AuditChain
from audit.services import PersonalDataError, chain_scope
from tenants.context import tenant_context

from .conftest import events_of


def test_events_chain_onto_each_other_from_the_genesis_hash(fresh_tenant):
    with tenant_context(fresh_tenant):
        first = audit.record(action="member.viewed", target_type="member", target_id=7)
        second = audit.record(action="checkup.viewed", target_type="checkup", target_id=9)
    stored = events_of(fresh_tenant)
    # tenant.created (recorded by the receiver) is seq 1 of this tenant's chain.
    assert [e.action for e in stored] == ["tenant.created", "member.viewed", "checkup.viewed"]
    assert [e.seq for e in stored] == [1, 2, 3]
    assert stored[0].prev_hash == GENESIS_HASH
    assert stored[1].prev_hash == stored[0].hash and stored[2].prev_hash == stored[1].hash
    assert (first.seq, second.seq) == (2, 3)
    # What is stored is what was hashed (round trip through the database included).
    for event in stored:
        values = {f: getattr(event, f) for f in ("chain", "seq", "occurred_at", "tenant_id", "actor_id")}
        values.update({f: getattr(event, f) for f in ("actor_role", "action", "target_type", "target_id")})
        values.update({f: getattr(event, f) for f in ("outcome", "client_ip", "user_agent", "request_id")})
        values.update(details=event.details, prev_hash=event.prev_hash)
        assert event_hash(event_document(values)) == event.hash
    with chain_scope(fresh_tenant):
        head = AuditChain.objects.get(chain=str(fresh_tenant.pk))
    assert (head.seq, head.hash) == (3, stored[-1].hash)


def test_tenant_defaults_to_the_current_one_and_none_means_the_tenantless_chain(world):
    with tenant_context(world.tenant_b):
        in_b = audit.record(action="roster.imported", details={"rows": 5})
        global_event = audit.record(action="auth.login.failed", outcome="failure", tenant=None)
    assert in_b.tenant_id == world.tenant_b.pk and in_b.chain == str(world.tenant_b.pk)
    assert global_event.tenant_id is None and global_event.chain == "-"
    assert events_of(world.tenant_b, action="roster.imported")[0].details == {"rows": 5}


def test_an_event_recorded_in_a_transaction_that_rolls_back_is_gone_with_it(fresh_tenant):
    from django.db import transaction

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic(), tenant_context(fresh_tenant):
        audit.record(action="label.granted", target_type="user", target_id=1)
        raise Boom
    assert [e.action for e in events_of(fresh_tenant)] == ["tenant.created"]
    with tenant_context(fresh_tenant):
        again = audit.record(action="label.granted", target_type="user", target_id=1)
    assert again.seq == 2  # no gap left behind by the rolled-back event


@pytest.mark.parametrize(
    "details",
    [
        {"old": {"contact": "canary-pii@example.com"}},
        {"note": "sent to Hanako.Yamada@corp.example.jp"},
        {"emails": ["x", "someone@example.org"]},
    ],
)
def test_details_that_look_like_an_email_address_are_refused_without_echoing_it(fresh_tenant, details):
    with tenant_context(fresh_tenant), pytest.raises(PersonalDataError) as raised:
        audit.record(action="member.updated", details=details)
    assert "@" not in str(raised.value)
    assert [e.action for e in events_of(fresh_tenant)] == ["tenant.created"]


@pytest.mark.parametrize("key", ["name", "address", "phone", "birth_date", "insurance_number", "email"])
def test_details_keyed_by_a_personal_attribute_are_refused(fresh_tenant, key):
    with tenant_context(fresh_tenant), pytest.raises(PersonalDataError, match=key):
        audit.record(action="member.updated", details={"old": {key: "x"}, "new": {key: "y"}})


def test_an_email_as_target_id_is_refused(fresh_tenant):
    with tenant_context(fresh_tenant), pytest.raises(PersonalDataError):
        audit.record(action="user.created", target_type="user", target_id="admin@a.example")


def test_floats_and_bad_action_names_are_refused(fresh_tenant):
    with tenant_context(fresh_tenant):
        with pytest.raises(TypeError):
            audit.record(action="lifelog.imported", details={"weight": 61.5})
        with pytest.raises(ValueError):
            audit.record(action="Member Viewed")


def test_a_request_gives_the_event_its_id_address_agent_and_acting_user(world, client):
    from tests.conftest import TEST_PASSWORD

    ua = "Mozilla/5.0 (mailto:leak@example.com) TestAgent"
    response = client.post(
        "/accounts/login/",
        {"username": "member@a.example", "password": TEST_PASSWORD},
        REMOTE_ADDR="203.0.113.7",
        HTTP_USER_AGENT=ua,
        HTTP_X_REQUEST_ID="forged-by-client-123",
    )
    assert response.status_code == 302
    (event,) = events_of(world.tenant_a, action="auth.login.succeeded")
    assert event.request_id == response["X-Request-ID"] != "forged-by-client-123"
    assert event.client_ip == "203.0.113.7"
    assert event.user_agent == "Mozilla/5.0 (mailto:[redacted]) TestAgent"
    assert (event.actor_id, event.actor_role) == (world.member_a.pk, "employee")
    assert (event.target_type, event.target_id) == ("user", str(world.member_a.pk))


def test_behind_our_proxies_the_proxy_request_id_is_kept(world, client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="proxy-req-0001")
    assert response["X-Request-ID"] == "proxy-req-0001"
