from rest_framework import serializers

from accounts.models import User


class MeSerializer(serializers.ModelSerializer):
    tenant = serializers.SerializerMethodField()
    role_display = serializers.CharField(source="get_role_display")

    class Meta:
        model = User
        fields = ["id", "email", "role", "role_display", "tenant"]

    def get_tenant(self, user: User) -> dict | None:
        if user.tenant_id is None:
            return None
        return {"slug": user.tenant.slug, "name": user.tenant.name, "kind": user.tenant.kind}
