from django.contrib import admin

from accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Operators only (is_staff). Roster entries (Member) are managed per tenant, not here."""

    list_display = ["id", "email", "role", "tenant", "is_active", "last_login"]
    list_filter = ["role", "is_active", "tenant"]
    search_fields = ["email"]
    readonly_fields = ["password", "last_login", "date_joined"]
    exclude = ["groups", "user_permissions"]
