"""Pages for self-registration, password reset and change, MFA, and the tenant's sign-in settings.
Thin: the rules live in accounts.registration, accounts.mfa and tenants.allowlist."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import mfa, registration
from accounts.auth_forms import (
    AllowlistForm,
    CardRegistrationForm,
    ChangePasswordForm,
    CodeForm,
    EmployeeRegistrationForm,
    PasswordConfirmForm,
    PasswordResetRequestForm,
    ReconfirmedPasswordForm,
    ResetSetPasswordForm,
    SecurityPolicyForm,
)
from accounts.middleware import PASSWORD_SHORT
from healthapp.errors import AppError
from healthapp.net import client_ip
from tenants import allowlist

NEW_BACKUP_CODES = "_mfa_new_backup_codes"
RATE_LIMITED = gettext_lazy(
    "登録やパスワード再設定の試行が多すぎます。しばらく時間をおいてから、もう一度お試しください。"
)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("accounts:home")


def _with_next(name: str, request: HttpRequest) -> str:
    return f"{reverse(name)}?{urlencode({'next': _next_url(request)})}"


# --- self-registration ------------------------------------------------------------------------------


def register(request: HttpRequest, by: str = "card") -> HttpResponse:
    form_class = EmployeeRegistrationForm if by == "employee" else CardRegistrationForm
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if by == "employee":
                registration.registration_request_by_employee(
                    proof=form.proof(),
                    email=data["email"],
                    password=data["password"],
                    ip=client_ip(request),
                    url=request.build_absolute_uri,
                )
            else:
                registration.registration_request_by_card(
                    card=form.card(),
                    email=data["email"],
                    password=data["password"],
                    ip=client_ip(request),
                    url=request.build_absolute_uri,
                )
        except registration.RateLimited:
            form.add_error(None, RATE_LIMITED)
            return render(request, "accounts/registration/register.html", {"form": form, "by": by}, status=429)
        return redirect("accounts:register-sent")
    return render(request, "accounts/registration/register.html", {"form": form, "by": by})


def register_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/registration/sent.html")


def register_confirm(request: HttpRequest, token: str) -> HttpResponse:
    # GET only shows a button: mail scanners that open links must not use up the single-use link.
    if request.method == "POST":
        user = registration.registration_confirm(token)
        if user is not None:
            messages.success(
                request, _("アカウント登録が完了しました。メールアドレスとパスワードでログインしてください。")
            )
            return redirect("accounts:login")
        return render(request, "accounts/registration/confirm.html", {"valid": False}, status=400)
    return render(request, "accounts/registration/confirm.html", {"valid": registration.registration_link_valid(token)})


# --- password reset and change ---------------------------------------------------------------------


def password_reset(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            registration.password_reset_request(
                email=form.cleaned_data["email"], ip=client_ip(request), url=request.build_absolute_uri
            )
        except registration.RateLimited:
            form.add_error(None, RATE_LIMITED)
            return render(request, "accounts/registration/password_reset.html", {"form": form}, status=429)
        return redirect("accounts:password-reset-sent")
    return render(request, "accounts/registration/password_reset.html", {"form": form})


def password_reset_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/registration/password_reset_sent.html")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/registration/password_reset_confirm.html"
    form_class = ResetSetPasswordForm
    success_url = reverse_lazy("accounts:password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        registration.password_reset_completed(user=form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/registration/password_reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/registration/password_change.html"
    form_class = ChangePasswordForm
    success_url = reverse_lazy("accounts:home")

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        response = super().form_valid(form)  # keeps this session, ends every other one
        self.request.session.pop(PASSWORD_SHORT, None)  # the new password met the policy
        registration.password_changed(user=form.user)
        messages.success(self.request, _("パスワードを変更しました。"))
        return response


# --- MFA ----------------------------------------------------------------------------------------------


@login_required
def mfa_overview(request: HttpRequest) -> HttpResponse:
    factors = mfa.mfa_factors(request.user)
    return render(
        request,
        "accounts/mfa/overview.html",
        {
            "devices": mfa.user_devices(request.user),
            "required": mfa.mfa_required(request.user),
            "factors": factors,
            "last_factor_kept": len(factors) == 1 and mfa.mfa_mandatory(request.user),
            "last_factor_message": mfa.LAST_FACTOR_MESSAGE,
        },
    )


def _enrolment_blocked(request: HttpRequest) -> bool:
    # Once a factor exists, adding another needs a verified session: a stolen password alone must
    # not be enough to enrol the thief's own app.
    return mfa.has_confirmed_device(request.user) and not request.user.is_verified()


@login_required
def mfa_setup(request: HttpRequest) -> HttpResponse:
    if _enrolment_blocked(request):
        return redirect(_with_next("accounts:mfa-verify", request))
    device = mfa.totp_pending_device(request.user, request.session)
    form = CodeForm(request.POST or None)
    # A further factor asks for the password too, as removing one does: an app enrolled from a hijacked
    # session would outlive it.
    posted = request.POST if request.method == "POST" else None
    password_form = ReconfirmedPasswordForm(posted, request=request) if mfa.has_confirmed_device(request.user) else None
    if request.method == "POST" and form.is_valid() and (password_form is None or password_form.is_valid()):
        try:
            confirmed = mfa.totp_confirm(request=request, device=device, code=form.cleaned_data["code"])
        except AppError as exc:
            form.add_error("code", exc.message)
        else:
            if confirmed:
                return _after_enrolment(request)
            form.add_error("code", _("コードが正しくありません。アプリに表示されている最新の6桁を入力してください。"))
    return render(
        request,
        "accounts/mfa/setup.html",
        {
            "form": form,
            "password_form": password_form,
            "qr_svg": mfa.totp_qr_svg(device),
            "secret": mfa.totp_secret_text(device),
            "next": _next_url(request),
            "required": mfa.mfa_required(request.user),
            "reason": mfa.mfa_reason(request.user),
        },
    )


@login_required
def mfa_setup_email(request: HttpRequest) -> HttpResponse:
    if _enrolment_blocked(request):
        return redirect("accounts:mfa-verify")
    form = CodeForm(request.POST or None) if "code" in request.POST else CodeForm()
    if request.method == "POST" and "send" in request.POST:
        if mfa.email_code_send(user=request.user, enrolment=True):
            messages.info(request, _("確認コードをメールで送信しました。"))
        else:
            messages.warning(request, _("少し時間をおいてから、もう一度送信してください。"))
    elif request.method == "POST" and form.is_valid():
        if mfa.email_confirm(request=request, code=form.cleaned_data["code"]):
            return _after_enrolment(request)
        form.add_error("code", _("コードが正しくないか、有効期限が切れています。"))
    return render(request, "accounts/mfa/setup_email.html", {"form": form, "next": _next_url(request)})


@login_required
def mfa_verify(request: HttpRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not mfa.has_confirmed_device(request.user):
        return redirect(_with_next("accounts:mfa-setup", request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = mfa.mfa_verify(request=request, code=form.cleaned_data["code"])
        if result.ok:
            return redirect(_next_url(request))
        form.add_error(
            "code",
            _("間違ったコードが続いたため、しばらく待ってから入力してください。")
            if result.throttled
            else _("コードが正しくありません。"),
        )
    return render(
        request,
        "accounts/mfa/verify.html",
        {"form": form, "next": _next_url(request), "devices": mfa.user_devices(request.user)},
    )


@login_required
@require_POST
def mfa_email_send(request: HttpRequest) -> HttpResponse:
    if mfa.email_code_send(user=request.user, enrolment=False):
        messages.info(request, _("確認コードをメールで送信しました。"))
    else:
        messages.warning(request, _("少し時間をおいてから、もう一度送信してください。"))
    return redirect(_with_next("accounts:mfa-verify", request))


def _after_enrolment(request: HttpRequest) -> HttpResponse:
    """A first factor comes with backup codes, shown once; a further factor keeps the codes already given
    (new ones would silently void those the person printed)."""
    if mfa.backup_codes_remaining(request.user):
        messages.success(request, _("認証方法を追加しました。バックアップコードは、これまでのものがそのまま使えます。"))
        return redirect(_next_url(request))
    request.session[NEW_BACKUP_CODES] = mfa.backup_codes_generate(user=request.user)
    return redirect(_with_next("accounts:mfa-backup-codes", request))


@login_required
def mfa_backup_codes(request: HttpRequest) -> HttpResponse:
    # New codes void the printed ones: the password typed again first, as for removing a factor.
    form = ReconfirmedPasswordForm(request.POST if request.method == "POST" else None, request=request)
    if request.method == "POST" and form.is_valid():
        try:
            request.session[NEW_BACKUP_CODES] = mfa.backup_codes_generate(user=request.user)
        except AppError as exc:
            messages.error(request, exc.message)
            return redirect("accounts:mfa")
        return redirect("accounts:mfa-backup-codes")
    codes = None if request.method == "POST" else request.session.pop(NEW_BACKUP_CODES, None)  # shown once
    context = {
        "codes": codes, "form": form, "next": _next_url(request), "can_generate": mfa.has_primary_factor(request.user)
    }  # fmt: skip
    return render(request, "accounts/mfa/backup_codes.html", context)


@login_required
def mfa_device_remove(request: HttpRequest, method: str, device_id: int) -> HttpResponse:
    """GET shows what removing the factor does; POST with the password typed again removes it."""
    if _enrolment_blocked(request):
        return redirect(_with_next("accounts:mfa-verify", request))
    device = mfa.mfa_factor_get(user=request.user, method=method, device_id=device_id)
    form = PasswordConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            done = mfa.mfa_device_remove(request=request, device=device, password=form.cleaned_data["password"])
        except AppError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("認証方法を削除しました。多要素認証は無効になり、バックアップコードも削除しました。")
                if done == mfa.Removal.MFA_OFF
                else _("認証方法を削除しました。"),
            )
            return redirect("accounts:mfa")
    return render(
        request,
        "accounts/mfa/device_remove.html",
        {
            "form": form,
            "method": method,
            "device": device,
            "removal": mfa.mfa_device_removal(user=request.user, device=device),
            "last_factor_message": mfa.LAST_FACTOR_MESSAGE,
        },
    )


# --- the tenant's sign-in settings (org admin) ------------------------------------------------------


def _require_manager(request: HttpRequest) -> None:
    if not allowlist.allowlist_can_manage(request.user):
        raise PermissionDenied


def _networks_digest(networks) -> str:
    return hashlib.sha256("\n".join(sorted(str(net) for net in networks)).encode()).hexdigest()


@login_required
def allowlist_edit(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    own = client_ip(request)
    current = "\n".join(str(net) for net in allowlist.allowlist_networks())
    form = AllowlistForm(request.POST or None, initial={"networks": current})
    warn = False
    if request.method == "POST" and form.is_valid():
        try:
            networks = allowlist.parse_networks(form.cleaned_data["networks"])
        except ValidationError as error:  # one message per bad line
            for message in error.messages:
                form.add_error("networks", message)
        else:
            digest = _networks_digest(networks)
            change = allowlist.allowlist_replace(
                networks=networks, own_address=own, confirmed=form.cleaned_data["confirm_exclude_self"] == digest
            )
            if change.saved:
                messages.success(request, _("IPアドレス許可リストを保存しました。"))
                return redirect("accounts:allowlist")
            warn = True
            form = AllowlistForm(initial={"networks": form.cleaned_data["networks"], "confirm_exclude_self": digest})
    return render(request, "accounts/allowlist/edit.html", {"form": form, "own_address": own, "warn": warn})


@login_required
def security_policy_edit(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = SecurityPolicyForm(request.POST or None, instance=mfa.security_policy())
    if request.method == "POST" and form.is_valid():
        mfa.security_policy_save(form=form)
        messages.success(request, _("セキュリティ設定を保存しました。"))
        return redirect("accounts:security-policy")
    return render(request, "accounts/allowlist/security.html", {"form": form})
