"""Second-factor checks in parallel on PostgreSQL (threads, each with its own connection): one code opens
one session, and parallel guesses are counted one after another. (django-otp loads the devices FOR UPDATE
when asked to verify, inside the request's transaction; this keeps that true.)"""

from __future__ import annotations

import threading

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import RequestFactory
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import Role, User
from accounts.services import user_create
from tenants.context import tenant_context

pytestmark = pytest.mark.postgres

THREADS = 6


def _in_parallel(user_pk: int, tenant, codes: list[str]) -> list[mfa.VerifyResult]:
    barrier = threading.Barrier(len(codes))
    results: list[mfa.VerifyResult] = []
    errors: list[BaseException] = []

    def check(code: str) -> None:
        try:
            request = RequestFactory().post("/accounts/mfa/verify/")
            request.user, request.session = User.objects.get(pk=user_pk), SessionStore()
            barrier.wait()
            with tenant_context(tenant):
                results.append(mfa.mfa_verify(request=request, code=code))
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=check, args=(code,)) for code in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_one_code_sent_in_parallel_opens_one_session_and_guesses_are_counted_each(committed_world):
    tenant = committed_world.tenant_a
    doctor = user_create(email="par-doc@a.example", role=Role.PHYSICIAN, tenant=tenant, password="Par-Doc-Passw0rd!")
    device = TOTPDevice.objects.create(user=doctor, name="totp", confirmed=True)
    code = f"{totp(device.bin_key, t0=device.t0, step=device.step, digits=device.digits):06d}"
    accepted = [r.ok for r in _in_parallel(doctor.pk, tenant, [code] * THREADS)]
    assert accepted.count(True) == 1, accepted  # a replayed code is refused, however close together
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    wrong = _in_parallel(doctor.pk, tenant, [f"{(int(code) + n) % 10**6:06d}" for n in range(1, THREADS + 1)])
    assert not any(r.ok for r in wrong)
    device.refresh_from_db()
    # each guess counted: the first wrong one starts the delay, the rest are refused unread (throttled)
    assert device.throttling_failure_count == 1 and sum(r.throttled for r in wrong) == THREADS - 1
