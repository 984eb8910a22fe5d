from django.contrib import admin

from accounts.models import User
from accounts.services import user_save_by_operator


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Operators only (is_staff). Roster entries (Member) are managed per tenant, not here."""

    list_display = ["id", "email", "role", "tenant", "is_active", "last_login"]
    list_filter = ["role", "is_active", "tenant"]
    search_fields = ["email"]
    readonly_fields = ["password_state", "last_login", "date_joined"]
    exclude = ["password", "groups", "user_permissions"]

    @admin.display(description="password")
    def password_state(self, obj: User) -> str:
        """Whether a password is set, never its hash (an offline guess needs nothing else)."""
        return "set" if obj.has_usable_password() else "not set"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead (audited as user.changed); a login's history stays

    def get_readonly_fields(self, request, obj=None):
        # A login never moves to another tenant: its roster entry, grants and history stay where they are.
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if change:
            user_save_by_operator(user=obj, acting_user=request.user)  # audited in the login's tenant
        else:
            super().save_model(request, obj, form, change)  # creation: audited as user.created
