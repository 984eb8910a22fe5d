"""Events recorded from signals: logins, logouts, lockouts, and new tenants and users.

A failed login never records the e-mail that was typed: the account's id when it exists (and its
tenant, so that tenant's admins see attacks on their accounts), otherwise nothing identifying.
"""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit.models import Outcome
from audit.services import record
from tenants.models import Tenant


def _account(username: Any):
    if not isinstance(username, str) or not username:
        return None
    return get_user_model().objects.filter(email=username.strip().lower()).select_related("tenant").first()


@receiver(user_logged_in, dispatch_uid="audit.login_succeeded")
def login_succeeded(sender, request, user, **kwargs) -> None:
    record(action="auth.login.succeeded", tenant=user.tenant, actor=user, target_type="user", target_id=user.pk)


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    account = _account(credentials.get("username"))
    record(
        action="auth.login.failed",
        outcome=Outcome.FAILURE,
        tenant=account.tenant if account else None,
        actor=None,
        target_type="user" if account else "",
        target_id=account.pk if account else None,
        details={} if account else {"account": "unknown"},
    )


@receiver(user_locked_out, dispatch_uid="audit.lockout")
def locked_out(sender, request=None, username: str | None = None, **kwargs) -> None:
    account = _account(username)
    record(
        action="auth.lockout",
        outcome=Outcome.DENIED,
        tenant=account.tenant if account else None,
        actor=None,
        target_type="user" if account else "",
        target_id=account.pk if account else None,
        details={} if account else {"account": "unknown"},
    )


@receiver(user_logged_out, dispatch_uid="audit.logout")
def logged_out(sender, request=None, user=None, **kwargs) -> None:
    if user is None:
        return
    record(action="auth.logout", tenant=user.tenant, actor=user, target_type="user", target_id=user.pk)


@receiver(post_save, sender=Tenant, dispatch_uid="audit.tenant_created")
def tenant_created(sender, instance: Tenant, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        record(
            action="tenant.created",
            tenant=instance,
            target_type="tenant",
            target_id=instance.pk,
            details={"kind": instance.kind},
        )


@receiver(post_save, sender="accounts.User", dispatch_uid="audit.user_created")
def user_created(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        record(
            action="user.created",
            tenant=instance.tenant,
            target_type="user",
            target_id=instance.pk,
            details={"role": instance.role},
        )
