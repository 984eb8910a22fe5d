"""Self-registration (MISSION A2) and password reset (A3).

The visitor never names a tenant: for each active tenant the typed roster data is turned into that
tenant's blind index (its own key) and looked up by the index alone, with no decryption scan. Every
path does the same work (every tenant's index, one password hash, one e-mail, one audit event), answers
with the same words, and is rate limited per client address and per roster entry, so the answer never
tells whether a roster entry or an e-mail address exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.mail import BadHeaderError, EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import audit
from accounts.models import Member, Role, User
from healthapp.crypto.blind_index import blind_index, insurance_card_index, normalise
from tenants.context import require_tenant, tenant_context
from tenants.models import PendingRegistration, Tenant, TenantSecurityPolicy

UrlBuilder = Callable[[str], str]  # absolute URL of a path on this site (request.build_absolute_uri)


class RateLimited(Exception):
    """Too many attempts from this address or for this roster entry / e-mail address."""


@dataclass(frozen=True)
class InsuranceCard:
    symbol: str
    number: str
    relationship: str
    sex: str
    birth_year_month: str  # YYYY-MM
    branch: str = ""  # 枝番, two digits, if the card shows one


@dataclass(frozen=True)
class EmployeeProof:
    employee_number: str
    birth_date: dt.date
    attribute_value: str


# --- rate limits ------------------------------------------------------------------------------------


def _hit(key: str, limit: int, window: int | None = None) -> bool:
    """Count one attempt under ``key``; False once more than ``limit`` happened within the window."""
    return _count(key, window or settings.REGISTRATION_RATE_LIMIT_WINDOW) <= limit


def _count(key: str, window: int) -> int:
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1


def _login_failures_key(ip: str) -> str:
    return f"rl:login_failed:ip:{ip or '-'}"


def login_address_blocked(*, ip: str) -> bool:
    """Whether this address has failed ``LOGIN_FAILURES_PER_IP`` logins within the window: then it may not
    try again until the window ends, not even with a right password. The account lockout counts per account
    (a forged or shared address can neither lift it nor lock out a whole office behind one NAT); this limit
    stops one address from trying a few passwords on every account instead."""
    return (cache.get(_login_failures_key(ip)) or 0) >= settings.LOGIN_FAILURES_PER_IP


def login_failed_from(*, ip: str) -> None:
    """Count a failed login from ``ip``; the failure that reaches the limit is audited (once per window)."""
    if _count(_login_failures_key(ip), settings.LOGIN_FAILURE_WINDOW) == settings.LOGIN_FAILURES_PER_IP:
        audit.record(action="auth.login.rate_limited", outcome="denied", tenant=None, details={"by": "address"})


def _check_rate(*, scope: str, ip: str, entry_parts: tuple[str, ...]) -> None:
    # The entry key is a keyed hash of the typed data: the same for every tenant and for data that
    # matches nobody, so hitting the limit says nothing about whether the entry exists.
    entry = salted_hmac(f"healthapp.{scope}.entry", "\x1f".join(entry_parts), algorithm="sha256").hexdigest()
    ip_ok = _hit(f"rl:{scope}:ip:{ip or '-'}", settings.REGISTRATION_RATE_LIMIT_PER_IP)
    entry_ok = _hit(f"rl:{scope}:entry:{entry}", settings.REGISTRATION_RATE_LIMIT_PER_ENTRY)
    if not (ip_ok and entry_ok):
        audit.record(
            action=f"auth.{scope}.rate_limited",
            outcome="denied",
            tenant=None,
            details={"by": "address" if not ip_ok else "entry"},
        )
        raise RateLimited


# --- e-mail -----------------------------------------------------------------------------------------


def send_templated_mail(*, to: str, template: str, context: dict) -> None:
    """Render templates/emails/<template>_subject.txt and _body.txt (Japanese with English) and send.

    Anything that reaches a header is checked for CR/LF here as well as by the forms: a header
    injection attempt raises instead of sending.
    """
    if "\r" in to or "\n" in to:
        raise BadHeaderError("line break in a recipient address")
    with translation.override("ja"):
        subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
        body = render_to_string(f"emails/{template}_body.txt", context)
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]).send()


# --- self-registration ------------------------------------------------------------------------------


def _card_matches(card: InsuranceCard) -> list[tuple[Tenant, Member]]:
    matches: list[tuple[Tenant, Member]] = []
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("pk"):
        with tenant_context(tenant):
            index = insurance_card_index(
                tenant.pk,
                symbol=card.symbol,
                number=card.number,
                relationship=card.relationship,
                sex=card.sex,
                birth_year_month=card.birth_year_month,
            )
            on_card = list(Member.objects.filter(insurance_card_index=index).order_by("pk")[:5])
            if card.branch:
                # Twins of one sex under one insured person share the index: only the 枝番 tells them
                # apart. Another person's 枝番 is never a match; an entry without one only when it is the
                # card's only entry (then nothing on file could tell). Without a typed 枝番, two entries
                # stay two: ambiguous, no account.
                same = [m for m in on_card if m.insurance_branch == card.branch]
                on_card = same or [m for m in on_card if len(on_card) == 1 and not m.insurance_branch]
            matches += [(tenant, member) for member in on_card]
    return matches


def _attribute_matches(member: Member, attribute: str, typed: str) -> bool:
    stored = getattr(member, attribute, "") or ""
    if attribute == TenantSecurityPolicy.RegistrationAttribute.PHONE:
        left, right = (
            "".join(c for c in normalise(stored) if c.isdigit()),
            "".join(c for c in normalise(typed) if c.isdigit()),
        )
    else:
        left, right = normalise(stored, kana=True), normalise(typed, kana=True)
    return bool(left) and hmac.compare_digest(left.encode(), right.encode())


def _employee_matches(proof: EmployeeProof) -> list[tuple[Tenant, Member]]:
    matches: list[tuple[Tenant, Member]] = []
    tenants = Tenant.objects.filter(status=Tenant.Status.ACTIVE, kind=Tenant.Kind.COMPANY).order_by("pk")
    for tenant in tenants:
        with tenant_context(tenant):
            index = blind_index(tenant.pk, "employee-number", proof.employee_number)
            member = Member.objects.filter(employee_number_index=index).first()
            if member is None:
                continue
            # Only the one entry the index found is decrypted, to compare the two other attributes.
            policy = TenantSecurityPolicy.objects.first() or TenantSecurityPolicy()
            if member.birth_date == proof.birth_date and _attribute_matches(
                member, policy.registration_attribute, proof.attribute_value
            ):
                matches.append((tenant, member))
    return matches


def registration_request_by_card(*, card: InsuranceCard, email: str, password: str, ip: str, url: UrlBuilder) -> None:
    """Start a self-registration with insurance-card data. Raises RateLimited; otherwise always
    returns the same way, whatever was found."""
    _check_rate(
        scope="registration",
        ip=ip,
        # The card alone, not what is typed beside it: guessing a person's 続柄, sex and birth month under a
        # known card must spend this card's few attempts, not one fresh allowance per guess.
        entry_parts=("card", normalise(card.symbol), normalise(card.number)),
    )
    _registration_finish(matches=_card_matches(card), method="card", email=email, password=password, url=url)


def registration_request_by_employee(
    *, proof: EmployeeProof, email: str, password: str, ip: str, url: UrlBuilder
) -> None:
    """Start a self-registration with employee number + birth date + the tenant's chosen attribute."""
    _check_rate(scope="registration", ip=ip, entry_parts=("employee", normalise(proof.employee_number)))
    _registration_finish(matches=_employee_matches(proof), method="employee", email=email, password=password, url=url)


def _registration_finish(
    *, matches: list[tuple[Tenant, Member]], method: str, email: str, password: str, url: UrlBuilder
) -> None:
    email = email.strip().lower()
    password_hash = make_password(password)  # on every path: the slow hash must not mark the match
    existing = User.objects.filter(email=email).first()  # stored lower-case; iexact would fold look-alikes (ı, ſ)
    today = timezone.localdate()
    eligible = (
        len(matches) == 1
        and matches[0][1].is_active
        and matches[0][1].user_id is None
        and (matches[0][1].qualification_end is None or matches[0][1].qualification_end >= today)
    )
    if existing is not None:
        result = "email_in_use"
    elif not matches:
        result = "no_match"
    elif len(matches) > 1:
        result = "ambiguous"
    elif not eligible:
        result = "not_eligible"
    else:
        result = "matched"

    if result == "matched":
        tenant, member = matches[0]
        token = _pending_create(tenant=tenant, member=member, email=email, password_hash=password_hash)
        link = url(_confirm_path(token))
        send_templated_mail(
            to=email, template="registration_confirm", context={"link": link, "hours": settings.REGISTRATION_LINK_HOURS}
        )
        audit.record(
            action="auth.registration.requested",
            tenant=tenant,
            actor=None,
            target_type="member",
            target_id=str(member.uid),
            details={"method": method},
        )
        return
    if result == "email_in_use":
        # Tell the owner of the address, not the visitor: the page reads the same as on success.
        send_templated_mail(
            to=email,
            template="registration_email_in_use",
            context={"reset_link": url(_reset_request_path()), "login_link": url(_login_path())},
        )
    else:
        send_templated_mail(to=email, template="registration_not_matched", context={"link": url(_register_path())})
    audit.record(
        action="auth.registration.requested",
        outcome="failure",
        tenant=None,
        actor=None,
        details={"method": method, "reason": result},
    )


def _pending_create(*, tenant: Tenant, member: Member, email: str, password_hash: str) -> str:
    secret = secrets.token_urlsafe(32)
    with tenant_context(tenant):
        PendingRegistration.objects.create(
            member_uid=member.uid,
            email=email,
            password_hash=password_hash,
            token_hash=_token_hash(secret),
            expires_at=timezone.now() + dt.timedelta(hours=settings.REGISTRATION_LINK_HOURS),
        )
    return f"{tenant.pk}.{secret}"


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split_token(token: str) -> tuple[Tenant, str] | None:
    tenant_id, _, secret = token.partition(".")
    if not tenant_id.isdigit() or len(secret) < 20:
        return None
    tenant = Tenant.objects.filter(pk=int(tenant_id), status=Tenant.Status.ACTIVE).first()
    return (tenant, secret) if tenant else None


def registration_link_valid(token: str) -> bool:
    """Whether the confirmation page should offer the button (the link is unused and in time)."""
    parts = _split_token(token)
    if parts is None:
        return False
    tenant, secret = parts
    with tenant_context(tenant):
        return PendingRegistration.objects.filter(
            token_hash=_token_hash(secret), used_at__isnull=True, expires_at__gt=timezone.now()
        ).exists()


@transaction.atomic
def registration_confirm(token: str) -> User | None:
    """Activate the account behind a confirmation link, once. None when the link is unknown, used,
    expired, or the roster entry was claimed or removed meanwhile."""
    parts = _split_token(token)
    if parts is None:
        audit.record(
            action="auth.registration.confirmed",
            outcome="failure",
            tenant=None,
            actor=None,
            details={"reason": "unknown_link"},
        )
        return None
    tenant, secret = parts
    with tenant_context(tenant):
        pending = PendingRegistration.objects.select_for_update().filter(token_hash=_token_hash(secret)).first()
        reason = ""
        member = None
        if pending is None:
            reason = "unknown_link"
        elif pending.used_at is not None:
            reason = "used"
        elif pending.expires_at <= timezone.now():
            reason = "expired"
        else:
            member = Member.objects.select_for_update().filter(uid=pending.member_uid, is_active=True).first()
            if member is None or member.user_id is not None:
                reason = "already_claimed"
            elif User.objects.filter(email=pending.email.lower()).exists():
                reason = "email_in_use"
        if reason:
            audit.record(
                action="auth.registration.confirmed",
                outcome="failure",
                actor=None,
                target_type="registration",
                target_id=pending.pk if pending else None,
                details={"reason": reason},
            )
            return None
        user = User.objects.create_user(pending.email, None, role=Role.EMPLOYEE, tenant=tenant)
        user.password = pending.password_hash
        user.save(update_fields=["password"])
        member.user = user
        member.save(update_fields=["user", "updated_at"])
        pending.used_at = timezone.now()
        pending.password_hash = ""  # not needed any more
        pending.save(update_fields=["used_at", "password_hash"])
        audit.record(
            action="auth.registration.confirmed",
            actor=user,
            target_type="user",
            target_id=user.pk,
            details={"member": str(member.uid)},
        )
    return user


@transaction.atomic
def pending_registrations_purge(*, now: dt.datetime | None = None, dry_run: bool = False) -> int:
    """Delete the current tenant's self-registrations whose link has expired, used or not: once the link is
    dead, the e-mail address and password hash they hold serve nothing. One audit event with the count.
    Returns how many rows were (``dry_run``: would be) deleted."""
    tenant = require_tenant()
    expired = PendingRegistration.objects.filter(expires_at__lte=now or timezone.now())
    if dry_run:
        return expired.count()
    deleted = expired.delete()[0]
    if deleted:
        audit.record(
            action="auth.registration.purged",
            actor=None,
            target_type="tenant",
            target_id=tenant.pk,
            details={"deleted": deleted},
        )
    return deleted


def _confirm_path(token: str) -> str:
    from django.urls import reverse

    return reverse("accounts:register-confirm", args=[token])


def _register_path() -> str:
    from django.urls import reverse

    return reverse("accounts:register")


def _login_path() -> str:
    from django.urls import reverse

    return reverse("accounts:login")


def _reset_request_path() -> str:
    from django.urls import reverse

    return reverse("accounts:password-reset")


# --- password reset ---------------------------------------------------------------------------------


def password_reset_request(*, email: str, ip: str, url: UrlBuilder) -> None:
    """E-mail a single-use reset link (Django's token: it dies with the password change and after
    PASSWORD_RESET_TIMEOUT). An unknown address gets a short note instead, so both paths send one mail."""
    email = email.strip().lower()
    _check_rate(scope="password_reset", ip=ip, entry_parts=(email,))
    user = User.objects.select_related("tenant").filter(email=email, is_active=True).first()
    if user is not None and user.tenant_id is not None and not user.tenant.is_active:
        user = None
    if user is None:
        send_templated_mail(
            to=email, template="password_reset_unknown", context={"register_link": url(_register_path())}
        )
        audit.record(
            action="auth.password_reset.requested",
            outcome="failure",
            tenant=None,
            actor=None,
            details={"account": "unknown"},
        )
        return
    from django.urls import reverse

    path = reverse(
        "accounts:password-reset-confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    send_templated_mail(
        to=user.email,
        template="password_reset",
        context={"link": url(path), "minutes": settings.PASSWORD_RESET_TIMEOUT // 60},
    )
    audit.record(
        action="auth.password_reset.requested", tenant=user.tenant, actor=None, target_type="user", target_id=user.pk
    )


def password_reset_completed(*, user: User) -> None:
    """After a reset: lift a lockout and audit. Every other session ends by itself, because Django ties
    sessions to the password hash (a session with the old hash is flushed on its next request)."""
    from axes.utils import reset as axes_reset

    axes_reset(username=user.email)
    audit.record(
        action="auth.password_reset.completed", tenant=user.tenant, actor=None, target_type="user", target_id=user.pk
    )


def password_changed(*, user: User) -> None:
    audit.record(action="auth.password.changed", tenant=user.tenant, actor=user, target_type="user", target_id=user.pk)
