"""Self-registration, password reset and MFA pages (accounts.auth_views)."""

from django.urls import path

from accounts import auth_views as views

urlpatterns = [
    path("accounts/register/", views.register, name="register"),
    path("accounts/register/employee/", views.register, {"by": "employee"}, name="register-employee"),
    path("accounts/register/sent/", views.register_sent, name="register-sent"),
    path("accounts/register/confirm/<str:token>/", views.register_confirm, name="register-confirm"),
    path("accounts/password/reset/", views.password_reset, name="password-reset"),
    path("accounts/password/reset/sent/", views.password_reset_sent, name="password-reset-sent"),
    path("accounts/password/reset/done/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("accounts/password/change/", views.PasswordChangeView.as_view(), name="password-change"),
    path("accounts/mfa/", views.mfa_overview, name="mfa"),
    path("accounts/mfa/setup/", views.mfa_setup, name="mfa-setup"),
    path("accounts/mfa/setup/email/", views.mfa_setup_email, name="mfa-setup-email"),
    path("accounts/mfa/verify/", views.mfa_verify, name="mfa-verify"),
    path("accounts/mfa/email/", views.mfa_email_send, name="mfa-email-send"),
    path("accounts/mfa/backup-codes/", views.mfa_backup_codes, name="mfa-backup-codes"),
    path(
        "accounts/mfa/devices/<slug:method>/<int:device_id>/remove/",
        views.mfa_device_remove,
        name="mfa-device-remove",
    ),
    path("settings/allowlist/", views.allowlist_edit, name="allowlist"),
    path("settings/security/", views.security_policy_edit, name="security-policy"),
]
