from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value, unquote
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import mfa
from accounts.models import Role, User
from accounts.services import login_lock_state, login_unlock_by_operator, user_save_by_operator
from healthapp.admin_site import ObjectTitleMixin, titled_filter


class UserAdminForm(forms.ModelForm):
    # Japanese labels for the fields the model leaves to Django's English default (is_active, is_staff,
    # tenant); set here, as a verbose_name on the model would need a migration.
    class Meta:
        model = User
        fields = ["email", "tenant", "role", "is_active", "is_staff", "is_superuser"]
        labels = {"tenant": _("テナント"), "is_active": _("有効"), "is_staff": _("スタッフ権限")}
        help_texts = {
            "tenant": _("運用担当者は空欄、ほかのロールは必須です。登録後は変更できません。"),
            "is_active": _("外すとこのログインは使えません。ここで外したものは名簿の取り込みでも戻りません。"),
            "is_staff": _("この運用管理画面にログインできます。運用担当者のログインにだけ付けられます。"),
        }  # fmt: skip

    def clean(self) -> dict:
        # The ops admin reaches every tenant: staff (or superuser) is for operators' logins only, never a
        # tenant's login, whoever ticks it.
        data = super().clean()
        if (data.get("is_staff") or data.get("is_superuser")) and data.get("role") != Role.OPERATOR:
            raise forms.ValidationError(
                _("スタッフ権限とスーパーユーザー権限は、運用担当者のログインにだけ付けられます。")
            )
        return data


@admin.register(User)
class UserAdmin(ObjectTitleMixin, admin.ModelAdmin):
    """Operators only (is_staff). Roster entries (Member) are managed per tenant, not here."""

    form = UserAdminForm
    list_display = ["id", "email", "role", "tenant_name", "active", "last_login"]
    list_filter = [
        "role",
        titled_filter("is_active", _("有効"), admin.BooleanFieldListFilter),
        titled_filter("tenant", _("テナント"), admin.RelatedFieldListFilter),
    ]
    list_select_related = ["tenant"]
    search_fields = ["email"]
    search_help_text = _("メールアドレスで検索します。")
    exclude = ["password", "groups", "user_permissions"]

    def object_title(self, obj: User) -> str:
        """Which login this is, without the e-mail address: its number, role and tenant."""
        values = {"id": obj.pk, "role": obj.get_role_display()}
        if obj.tenant_id is None:
            return _("ログイン #%(id)s（%(role)s）") % values
        return _("ログイン #%(id)s（%(role)s／%(tenant)s）") % {**values, "tenant": obj.tenant.name}

    def get_fieldsets(self, request, obj=None):
        # A login never moves to another tenant: its roster entry, grants and history stay where they are.
        # Once it exists the tenant is shown, not asked (tenant_name, read-only).
        fieldsets = [
            (None, {"fields": ["email", "tenant" if obj is None else "tenant_name", "role"]}),
            (_("状態と権限"), {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ]
        if obj is not None:
            fieldsets.append((_("ログインの記録"), {"fields": ["password_state", "last_login", "joined_at"]}))
            fieldsets.append((_("多要素認証とロック"), {"fields": ["mfa_state", "lock_state"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # "tenant" too: kept out of the change form even if a fieldset ever names it.
        return (
            []
            if obj is None
            else ["tenant", "tenant_name", "password_state", "last_login", "joined_at", "mfa_state", "lock_state"]
        )

    @admin.display(description=_("テナント"), ordering="tenant__name")
    def tenant_name(self, obj: User) -> str:
        return obj.tenant.name if obj.tenant_id else _("（なし：運用担当者）")

    @admin.display(description=_("有効"), boolean=True, ordering="is_active")
    def active(self, obj: User) -> bool:
        return obj.is_active

    @admin.display(description=_("登録日時"))
    def joined_at(self, obj: User) -> str:
        return display_for_value(obj.date_joined, "")  # local time, formatted like the list columns

    @admin.display(description=_("パスワード"))
    def password_state(self, obj: User) -> str:
        """Whether a password is set, never its hash (an offline guess needs nothing else). A login added
        here has an empty one until a reset: that is not a password either."""
        return pgettext_lazy("password", "設定済み") if obj.password and obj.has_usable_password() else _("未設定")

    @admin.display(description=_("多要素認証"))
    def mfa_state(self, obj: User) -> str:
        devices = mfa.user_devices(obj)
        state = _("認証アプリ：%(totp)s／メールの確認コード：%(email)s／バックアップコード：残り%(codes)s件") % {
            "totp": _("登録済み") if devices["totp"] else _("なし"),
            "email": _("登録済み") if devices["email"] else _("なし"),
            "codes": devices["backup_codes"],
        }
        if not (devices["totp"] or devices["email"] or devices["backup_codes"]):
            return state
        url = reverse("admin:accounts_user_mfa_reset", args=[obj.pk])
        return format_html('{} <a href="{}" data-testid="mfa-reset">{}</a>', state, url, _("リセットする…"))

    @admin.display(description=_("ログインのロック"))
    def lock_state(self, obj: User) -> str:
        failures, locked = login_lock_state(obj)
        if not failures:
            return _("なし")
        state = _("ロック中（%(n)s回失敗）") if locked else _("%(n)s回失敗（まだロックされていません）")
        state = state % {"n": failures}
        url = reverse("admin:accounts_user_unlock", args=[obj.pk])
        return format_html('{} <a href="{}" data-testid="unlock">{}</a>', state, url, _("解除する…"))

    def get_urls(self):
        # Before the admin's own: its "<id>/" catch-all would swallow these.
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/mfa-reset/", view(self.mfa_reset_view), name="accounts_user_mfa_reset"),
            path("<path:object_id>/unlock/", view(self.unlock_view), name="accounts_user_unlock"),
            *super().get_urls(),
        ]

    def mfa_reset_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._confirmed_action(
            request,
            object_id,
            title=_("多要素認証のリセット"),
            explanation=[
                _("このログインの認証アプリ、メールの確認コード、バックアップコードをすべて削除します。"),
                _("多要素認証が必須のログインは、次にログインしたとき、パスワードだけで新しい認証方法を登録します。"
                  "本人であることを電話や所属先への照会で確かめてから実行してください。"),
                _("この操作はログインのテナントの監査ログに記録されます。"),
            ],
            button=_("多要素認証をリセットする"),
            run=lambda user: mfa.mfa_reset_by_operator(user=user, acting_user=request.user),
            done=_("多要素認証をリセットしました。次のログインで認証方法を登録し直します。"),
        )  # fmt: skip

    def unlock_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._confirmed_action(
            request,
            object_id,
            title=_("ログインのロック解除"),
            explanation=[
                _("ログインの失敗回数を消して、すぐにログインできるようにします（待てば自動で解除されます）。"),
                _("本人からの連絡であることを確かめてから実行してください。この操作は監査ログに記録されます。"),
            ],
            button=_("ロックを解除する"),
            run=lambda user: login_unlock_by_operator(user=user, acting_user=request.user),
            done=_("ロックを解除しました。"),
        )

    def _confirmed_action(self, request: HttpRequest, object_id: str, *, title, explanation, button, run, done):
        """A destructive act on one login: GET asks (nothing changes), POST does it and returns to the login."""
        user = self.get_object(request, unquote(object_id))
        if user is None or not self.has_change_permission(request, user):
            raise Http404
        back = reverse("admin:accounts_user_change", args=[user.pk])
        if user.pk == request.user.pk:
            own = _("ご自身のログインには使えません（ログイン設定から変更してください）。")
            self.message_user(request, own, messages.ERROR)
            return redirect(back)
        if request.method == "POST":
            run(user)
            self.message_user(request, done, messages.SUCCESS)
            return redirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": self.object_title(user),
            "opts": self.model._meta,
            "original": user,
            "explanation": explanation,
            "button": button,
            "back": back,
        }
        return TemplateResponse(request, "admin/accounts/user/confirm_action.html", context)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead (audited as user.changed); a login's history stays

    def save_model(self, request, obj, form, change) -> None:
        if change:
            user_save_by_operator(user=obj, acting_user=request.user)  # audited in the login's tenant
        else:
            super().save_model(request, obj, form, change)  # creation: audited as user.created
