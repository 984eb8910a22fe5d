from django.contrib import admin

from tenants.models import Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "status", "contract_start", "contract_end"]
    list_filter = ["kind", "status"]
    search_fields = ["slug", "name"]
