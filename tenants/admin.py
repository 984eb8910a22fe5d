from django.contrib import admin

import audit
from tenants.models import Tenant

# What an operator may change of a tenant here, each change recorded in that tenant's audit chain.
AUDITED_FIELDS = ("slug", "name", "status", "contract_start", "contract_end", "insurer_number")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "status", "contract_start", "contract_end"]
    list_filter = ["kind", "status"]
    search_fields = ["slug", "name"]

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
        changed = {
            name: [str(getattr(before, name) or ""), str(getattr(obj, name) or "")]
            for name in AUDITED_FIELDS
            if getattr(before, name) != getattr(obj, name)
        }
        if changed:
            audit.record(action="tenant.changed", tenant=obj, target_type="tenant", target_id=obj.pk,
                         actor=request.user, details={"changed": changed})  # fmt: skip
