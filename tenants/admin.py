from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

import audit
from tenants.models import Tenant

# What an operator may change of a tenant here, each change recorded in that tenant's audit chain.
AUDITED_FIELDS = ("slug", "name", "status", "contract_start", "contract_end", "insurer_number")
AUDIT_KEYS = {"name": "tenant_name"}


class TenantAdminForm(forms.ModelForm):
    # What each setting does, for the operator (help texts on the model would need a migration).
    class Meta:
        model = Tenant
        fields = ["kind", "name", "slug", "contract_start", "contract_end", "status", "insurer_number"]
        help_texts = {
            "kind": _("登録後は変更できません。"),
            "slug": _("運用コマンドの --tenant で指定する名前です。"),
            "contract_end": _("空欄は期限なしです。"),
            "status": _("契約中以外にすると、このテナントのユーザーはログインできなくなります。"),
            "insurer_number": _("健保のみ。設定すると、別の保険者の健診データ（XML）は人ごとに取り込みを拒否します。"),
        }  # fmt: skip


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantAdminForm
    list_display = ["slug", "name", "kind", "status", "contract_start", "contract_end"]
    list_filter = ["kind", "status"]
    search_fields = ["slug", "name"]
    search_help_text = _("識別子・名称で検索します。")

    def get_readonly_fields(self, request, obj=None):
        # A company never becomes a health-insurance association: its data, pages and duties differ.
        return ["kind"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a tenant's data goes by crypto-shredding and purging (operator commands), audited

    def save_model(self, request, obj, form, change) -> None:
        before = Tenant.objects.get(pk=obj.pk) if change else None
        super().save_model(request, obj, form, change)
        if before is None:
            return  # creation: audited as tenant.created
        # A tenant's name is its organisation's, not a person's: recorded as tenant_name, since audit details
        # refuse any key called "name" (a person's, everywhere else).
        changed = {
            AUDIT_KEYS.get(name, name): [str(getattr(before, name) or ""), str(getattr(obj, name) or "")]
            for name in AUDITED_FIELDS
            if getattr(before, name) != getattr(obj, name)
        }
        if changed:
            audit.record(action="tenant.changed", tenant=obj, target_type="tenant", target_id=obj.pk,
                         actor=request.user, details={"changed": changed})  # fmt: skip
