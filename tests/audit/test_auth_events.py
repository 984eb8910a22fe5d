"""Logins, failures, lockouts and logouts land in the audit log of the account's tenant, by user id."""

from __future__ import annotations

from tests.conftest import TEST_PASSWORD, log_in

from .conftest import events_of

WRONG = "wrong-password-1A"


def test_a_successful_login_and_the_logout_are_recorded_for_the_user(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD, REMOTE_ADDR="198.51.100.4")
    client.post("/accounts/logout/", REMOTE_ADDR="198.51.100.4")
    events = events_of(world.tenant_a, actor_id=world.member_a.pk)
    assert [e.action for e in events] == ["auth.login.succeeded", "auth.logout"]
    assert {e.client_ip for e in events} == {"198.51.100.4"}
    assert events[0].request_id != events[1].request_id


def test_a_wrong_password_is_recorded_by_account_id_in_its_tenant_never_by_email(client, world):
    log_in(client, "Member@A.example", WRONG)
    (event,) = events_of(world.tenant_a, action="auth.login.failed")
    assert (event.outcome, event.target_type, event.target_id, event.actor_id) == (
        "failure",
        "user",
        str(world.member_a.pk),
        None,
    )
    assert "member@a.example" not in str(event.__dict__).lower()


def test_an_unknown_email_is_recorded_without_anything_identifying(client, world):
    log_in(client, "nobody-here@a.example", WRONG)
    events = [e for e in events_of(None, action="auth.login.failed") if e.details == {"account": "unknown"}]
    assert len(events) == 1
    assert (events[0].tenant_id, events[0].target_id) == (None, "")
    assert "nobody-here" not in str(events[0].__dict__)
    assert events_of(world.tenant_a, action="auth.login.failed") == []


def test_the_fifth_wrong_password_records_a_lockout_and_later_tries_too(client, world):
    for _ in range(5):
        log_in(client, "member@a.example", WRONG)
    assert len(events_of(world.tenant_a, action="auth.login.failed")) == 5
    lockouts = events_of(world.tenant_a, action="auth.lockout")
    assert [(e.outcome, e.target_id) for e in lockouts] == [("denied", str(world.member_a.pk))]
    assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 429
    assert len(events_of(world.tenant_a, action="auth.lockout")) == 2
    assert events_of(world.tenant_a, action="auth.login.succeeded") == []


def test_new_tenants_and_users_are_recorded_with_ids_and_kinds_only(world):
    (created,) = events_of(world.tenant_b, action="tenant.created")
    assert (created.target_id, created.details) == (str(world.tenant_b.pk), {"kind": "insurer"})
    users = events_of(world.tenant_a, action="user.created")
    assert {(e.target_id, e.details["role"]) for e in users} == {
        (str(world.admin_a.pk), "org_admin"),
        (str(world.member_a.pk), "employee"),
    }
