"""Self-registration, password reset and MFA pages (accounts.auth_views)."""

urlpatterns: list = []
