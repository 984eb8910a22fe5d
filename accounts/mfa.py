"""Multi-factor authentication (MISSION A5): TOTP apps, e-mailed one-time codes and single-use backup
codes, all django-otp devices. Mandatory for every role other than employee, and for everyone in a tenant
whose security policy says so; an employee who enrolled a device is asked for it as well."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import django_otp
import qrcode
import qrcode.image.svg
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

import audit
from accounts import policy, services
from accounts.labels import LABELS, Scope
from accounts.models import User
from healthapp.errors import AppError
from tenants.context import current_tenant
from tenants.models import TenantSecurityPolicy

BACKUP_CODE_COUNT = 10
BACKUP_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt
TOTP_NAME = "totp"
EMAIL_NAME = "email"
BACKUP_NAME = "backup"


def security_policy() -> TenantSecurityPolicy:
    """The current tenant's policy (an unsaved default when the tenant never changed it)."""
    return TenantSecurityPolicy.objects.first() or TenantSecurityPolicy(tenant=current_tenant())


def mfa_mandatory(user: User) -> bool:
    """Does the role (every one but employee), a label over others' data or the tenant's policy demand a
    second factor?"""
    if policy.privileged(user):
        return True
    return user.tenant_id is not None and current_tenant() is not None and security_policy().mfa_required_for_all


def mfa_reason(user: User) -> str:
    """Why a second factor is mandatory for ``user``, in words for them ("" when it is not): an employee
    given a label over others learns it from this, not from the label's administrator."""
    if user.is_privileged:
        return _("%(role)s のロールは、ほかの人の情報を扱うためです。") % {"role": user.get_role_display()}
    grants = [g for g in policy.effective_grants(user) if g.scope != Scope.SELF]
    if grants:
        names = pgettext("list separator", "、").join(dict.fromkeys(str(LABELS[g.label].name) for g in grants))
        return _("ほかの人の情報を扱える権限（%(labels)s）が付与されているためです。") % {"labels": names}
    if mfa_mandatory(user):
        return _("組織の設定で、全員に必須になっているためです。")
    return ""


def mfa_required(user: User) -> bool:
    """Must this user pass a second factor before anything beyond enrolment?"""
    return mfa_mandatory(user) or django_otp.user_has_device(user)


def has_confirmed_device(user: User) -> bool:
    return django_otp.user_has_device(user)


# --- TOTP --------------------------------------------------------------------------------------------


PENDING_TOTP = "mfa_pending_totp"  # session key: the id of the device this session's enrolment page shows


def totp_pending_device(user: User, session: SessionBase) -> TOTPDevice:
    """The unconfirmed TOTP device this session's enrolment page shows: kept across its reloads (the QR
    code already scanned stays valid), never another session's. Shared, a key shown to someone who had only
    the password (and did not confirm it) would be the one the owner enrols later, a copy of their app."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False, name=TOTP_NAME)
    device = pending.filter(pk=session.get(PENDING_TOTP)).first() if session.get(PENDING_TOTP) else None
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
        session[PENDING_TOTP] = device.pk
    return device


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG drawn on the server (no CDN, no script, no inline style)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    return svg[svg.index("<svg") :]  # drop any XML declaration: this is embedded in HTML


def totp_secret_text(device: TOTPDevice) -> str:
    """The key in base32 groups of four, for typing into an app when the camera cannot be used."""
    from base64 import b32encode

    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


THROTTLED = _(
    "間違ったコードが続いたため、少しの間受け付けません。数秒待ってから、アプリの最新のコードを入力してください。"
)


@transaction.atomic
def totp_confirm(*, request: HttpRequest, device: TOTPDevice, code: str) -> bool:
    """Confirm enrolment with a first code from the app; the session counts as verified."""
    if device.user_id != request.user.pk or device.confirmed:
        return False
    allowed, _info = device.verify_is_allowed()
    if not allowed:  # django-otp refuses even the right code for a while after a wrong one: say so
        raise AppError("mfa_throttled", THROTTLED)
    if not device.verify_token(_digits(code)):
        audit.record(
            action="auth.mfa.enrolment_failed",
            outcome="failure",
            target_type="user",
            target_id=device.user_id,
            details={"method": "totp"},
        )
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()  # other sessions' keys die with it
    request.session.pop(PENDING_TOTP, None)
    django_otp.login(request, device)
    audit.record(action="auth.mfa.enrolled", target_type="user", target_id=device.user_id, details={"method": "totp"})
    return True


# --- e-mailed codes ----------------------------------------------------------------------------------


def email_device(user: User, *, confirmed: bool) -> EmailDevice | None:
    qs = EmailDevice.objects.filter(user=user, name=EMAIL_NAME)
    return qs.filter(confirmed=True).first() if confirmed else qs.order_by("-confirmed", "pk").first()


def email_code_send(*, user: User, enrolment: bool) -> bool:
    """Send a one-time code to the account's address. ``enrolment`` creates the (unconfirmed) device;
    otherwise only an enrolled e-mail device receives codes. False while the resend cooldown runs."""
    device = email_device(user, confirmed=not enrolment)
    if device is None:
        if not enrolment:
            return False
        device = EmailDevice.objects.create(user=user, name=EMAIL_NAME, confirmed=False)
    allowed, _ = device.generate_is_allowed()
    if not allowed:
        return False
    device.generate_challenge()
    audit.record(action="auth.mfa.code_sent", target_type="user", target_id=user.pk, details={"method": "email"})
    return True


@transaction.atomic
def email_confirm(*, request: HttpRequest, code: str) -> bool:
    """Confirm e-mail codes as the user's second factor with the code just sent."""
    device = email_device(request.user, confirmed=False)
    if device is None or not device.verify_token(_digits(code)):
        audit.record(
            action="auth.mfa.enrolment_failed",
            outcome="failure",
            target_type="user",
            target_id=request.user.pk,
            details={"method": "email"},
        )
        return False
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit.record(
            action="auth.mfa.enrolled", target_type="user", target_id=request.user.pk, details={"method": "email"}
        )
    django_otp.login(request, device)
    return True


# --- backup codes ------------------------------------------------------------------------------------


@transaction.atomic
def has_primary_factor(user: User) -> bool:
    """An authenticator app or e-mailed codes: what backup codes stand in for. Backup codes alone are no
    second factor (they would switch MFA on with no way to get more codes or to turn it off)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or EmailDevice.objects.filter(user=user, confirmed=True).exists()
    )


def backup_codes_generate(*, user: User) -> list[str]:
    """Replace the user's backup codes with fresh ones; each works once. Returned once, never stored in
    clear anywhere else (django-otp keeps them to compare). Only beside a primary factor."""
    if not has_primary_factor(user):
        raise AppError("no_primary_factor", _("先に認証アプリかメールの確認コードを設定してください。"))
    device, _created = StaticDevice.objects.get_or_create(user=user, name=BACKUP_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = ["".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(10)) for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    audit.record(
        action="auth.mfa.backup_codes_generated", target_type="user", target_id=user.pk, details={"count": len(codes)}
    )
    return codes


def backup_codes_remaining(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- verification at login ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    throttled: bool = False
    method: str = ""


@transaction.atomic
def mfa_verify(*, request: HttpRequest, code: str) -> VerifyResult:
    """Check ``code`` against each confirmed device (TOTP, e-mail, backup codes). A TOTP code that was
    accepted once is refused afterwards; every device slows down after wrong codes (django-otp)."""
    user = request.user
    cleaned = code.strip().replace(" ", "").replace("-", "").lower()
    throttled = False
    for device in django_otp.devices_for_user(user, confirmed=True, for_verify=True):
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        candidate = cleaned if isinstance(device, StaticDevice) else _digits(cleaned)
        if candidate and device.verify_token(candidate):
            django_otp.login(request, device)
            method = _method(device)
            audit.record(action="auth.mfa.verified", target_type="user", target_id=user.pk, details={"method": method})
            return VerifyResult(ok=True, method=method)
    audit.record(
        action="auth.mfa.failed",
        outcome="failure",
        target_type="user",
        target_id=user.pk,
        details={"throttled": throttled},
    )
    return VerifyResult(ok=False, throttled=throttled)


def user_devices(user: User) -> dict:
    """What the MFA page shows: which methods are on, and how many backup codes are left."""
    return {
        "totp": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "email": EmailDevice.objects.filter(user=user, confirmed=True).exists(),
        "backup_codes": backup_codes_remaining(user),
    }


# --- the user's own devices: list and remove --------------------------------------------------------

# The factors a user signs in with. Backup codes are a fallback for them, not a factor of their own:
# they are not listed as a device and cannot be the one thing left.
FACTOR_MODELS: dict[str, type[TOTPDevice] | type[EmailDevice]] = {"totp": TOTPDevice, "email": EmailDevice}
LAST_FACTOR_MESSAGE = _(
    "このアカウントでは多要素認証が必須のため、最後の認証方法は削除できません。"
    "先に別の認証方法（認証アプリまたはメールの確認コード）を追加してください。"
)


@dataclass(frozen=True)
class FactorRow:
    method: str  # "totp" | "email"
    id: int
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None


class Removal:
    """What removing one factor does (mfa_device_removal)."""

    REFUSED = "refused"  # the last factor of a user who must use MFA
    MFA_OFF = "mfa_off"  # the last factor where MFA is optional: MFA ends, the backup codes go too
    REMOVED = "removed"  # another factor remains


def mfa_factors(user: User) -> list[FactorRow]:
    """The user's confirmed factors (app and e-mail devices), oldest first."""
    rows = [
        FactorRow(method=method, id=device.pk, created_at=device.created_at, last_used_at=device.last_used_at)
        for method, model in FACTOR_MODELS.items()
        for device in model.objects.filter(user=user, confirmed=True)
    ]
    return sorted(rows, key=lambda row: (row.created_at or dt.datetime.min.replace(tzinfo=dt.UTC), row.id))


def mfa_factor_get(*, user: User, method: str, device_id: int) -> TOTPDevice | EmailDevice:
    """One confirmed factor of ``user``; anyone else's, an unconfirmed one or a missing one is 404."""
    model = FACTOR_MODELS.get(method)
    device = model.objects.filter(user=user, confirmed=True, pk=device_id).first() if model else None
    if device is None:
        raise Http404
    return device


def mfa_device_removal(*, user: User, device: TOTPDevice | EmailDevice) -> str:
    """Removal.REFUSED / MFA_OFF / REMOVED for removing ``device`` now (the confirmation page says which)."""
    others = [row for row in mfa_factors(user) if (row.method, row.id) != (_method(device), device.pk)]
    if others:
        return Removal.REMOVED
    return Removal.REFUSED if mfa_mandatory(user) else Removal.MFA_OFF


def mfa_device_remove(*, request: HttpRequest, device: TOTPDevice | EmailDevice, password: str) -> str:
    """Remove one of the signed-in user's own factors once they have typed their password again.

    Refused with AppError (and audited) for a wrong password and for the last factor of a user whose role
    or tenant requires MFA. Removing the last factor where MFA is optional turns MFA off and deletes the
    backup codes too: left alone, they would still be asked for at every login. Returns the Removal done.
    """
    user = request.user
    method = _method(device)
    if not services.password_reconfirmed(request=request, user=user, password=password):
        _removal_refused(user=user, method=method, reason="password", outcome="failure")
        raise AppError("wrong_password", _("パスワードが正しくありません。"))
    outcome = _device_delete(request=request, device=device)
    if outcome == Removal.REFUSED:
        _removal_refused(user=user, method=method, reason="last_factor", outcome="denied")
        raise AppError("last_factor", LAST_FACTOR_MESSAGE)
    return outcome


@transaction.atomic
def _device_delete(*, request: HttpRequest, device: TOTPDevice | EmailDevice) -> str:
    user = request.user
    # Two removals at once (two tabs) must not both see "another factor remains".
    User.objects.select_for_update().filter(pk=user.pk).first()
    outcome = mfa_device_removal(user=user, device=device)
    if outcome == Removal.REFUSED:
        return outcome
    method, device_pk = _method(device), device.pk
    session_device = getattr(user, "otp_device", None)
    this_session_used_it = session_device is not None and session_device.persistent_id == device.persistent_id
    device.delete()
    if outcome == Removal.MFA_OFF:
        StaticDevice.objects.filter(user=user).delete()
    elif this_session_used_it:
        # This session passed its second factor and the password was just typed again: keep it verified
        # through a factor that remains. Other sessions verified with the removed device lose it.
        remaining = mfa_factors(user)[0]
        django_otp.login(request, mfa_factor_get(user=user, method=remaining.method, device_id=remaining.id))
    audit.record(
        action="auth.mfa.device_removed",
        target_type="user",
        target_id=user.pk,
        details={"method": method, "device": device_pk, "mfa_off": outcome == Removal.MFA_OFF},
    )
    return outcome


def _removal_refused(*, user: User, method: str, reason: str, outcome: str) -> None:
    audit.record(
        action="auth.mfa.device_removed",
        outcome=outcome,
        target_type="user",
        target_id=user.pk,
        details={"method": method, "reason": reason},
    )


def _digits(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())[:8]


def _method(device) -> str:
    if isinstance(device, TOTPDevice):
        return "totp"
    if isinstance(device, EmailDevice):
        return "email"
    return "backup_code"


def security_policy_save(*, form) -> TenantSecurityPolicy:
    """Save the tenant's policy form and audit what changed (setting names and values, no people)."""
    changed = {name: form.cleaned_data[name] for name in form.changed_data}
    policy = form.save()
    audit.record(
        action="tenant.security_policy.changed",
        target_type="tenant",
        target_id=policy.tenant_id,
        details={"changed": changed},
    )
    return policy


# --- an operator's reset (ops admin) -----------------------------------------------------------------


@transaction.atomic
def mfa_reset_by_operator(*, user: User, acting_user: User) -> dict[str, int]:
    """Remove every second factor of a login that lost them all (a lost phone, no backup codes left), so
    that it enrols again at its next login; its sessions verified with a removed device must verify again.
    Recorded in the login's tenant chain with the operator as actor. Returns how many of each were removed."""
    User.objects.select_for_update().filter(pk=user.pk).first()  # against a concurrent enrolment
    removed = {}
    for method, model in (*FACTOR_MODELS.items(), (BACKUP_NAME, StaticDevice)):
        devices = model.objects.filter(user=user)
        removed[method] = devices.count()
        devices.delete()  # backup codes: their tokens go with the device
    details = {"methods": [method for method, n in removed.items() if n], "devices": sum(removed.values())}
    audit.record(action="auth.mfa.reset", tenant=user.tenant, actor=acting_user, target_type="user",
                 target_id=user.pk, details=details)  # fmt: skip
    return removed
