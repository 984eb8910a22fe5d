from rest_framework import serializers

from accounts.labels import LABELS, Scope
from accounts.models import LabelGrant, Member, Team, User
from accounts.selectors import card_visible, identity_visible


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


class MemberSerializer(serializers.ModelSerializer):
    """Decrypted roster fields: only ever built from a queryset already narrowed by accounts.policy."""

    office = serializers.CharField(source="office.name", default=None)
    department = serializers.CharField(source="department.name", default=None)
    employee_number = serializers.CharField()
    name = serializers.CharField()
    kana_name = serializers.CharField()
    # Part of the insurance card: for those who may see the card's fields (accounts.selectors.card_visible).
    relationship = serializers.SerializerMethodField()
    # As a person's roster page shows them: for those who keep the roster (accounts.selectors.identity_visible).
    birth_date = serializers.SerializerMethodField()
    sex = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = ["id", "uid", "employee_number", "name", "kana_name", "office", "department", "relationship",
                  "birth_date", "sex", "is_active"]  # fmt: skip

    def _may(self, check) -> bool:
        """Asked once per response, not once per member of a list."""
        request = self.context.get("request")
        if request is None:
            return False
        known = self.context.setdefault("_visible", {})
        if check not in known:
            known[check] = check(request.user)
        return known[check]

    def get_relationship(self, member: Member) -> str | None:
        return member.relationship if self._may(card_visible) else None

    def get_birth_date(self, member: Member) -> str | None:
        return member.birth_date.isoformat() if member.birth_date and self._may(identity_visible) else None

    def get_sex(self, member: Member) -> str | None:
        return (member.sex or None) if self._may(identity_visible) else None


class GrantSerializer(serializers.ModelSerializer):
    target = serializers.SerializerMethodField()

    class Meta:
        model = LabelGrant
        fields = ["id", "office", "target_kind", "target", "labels", "scope", "valid_from", "valid_until"]

    def get_target(self, grant: LabelGrant) -> str:
        return grant.department.name if grant.department_id else str(grant.member.employee_number)


class GrantWriteSerializer(serializers.Serializer):
    office = serializers.IntegerField()
    target_kind = serializers.ChoiceField(choices=["employee", "department"])
    target = serializers.CharField(max_length=100, help_text="employee number or department name of the office")
    labels = serializers.ListField(child=serializers.ChoiceField(choices=list(LABELS)), allow_empty=False)
    scope = serializers.ChoiceField(choices=[code for code, _ in Scope.CHOICES])
    valid_from = serializers.DateField(required=False, allow_null=True)
    valid_until = serializers.DateField(required=False, allow_null=True)


class TeamSerializer(serializers.ModelSerializer):
    # The creator's name in the team (write-only: a team's members are not listed by the API).
    display_name = serializers.CharField(write_only=True, max_length=30)

    class Meta:
        model = Team
        fields = ["id", "name", "description", "join_policy", "display_name", "created_at"]
        read_only_fields = ["id", "created_at"]


class TeamJoinSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=30)


class TeamDecisionSerializer(serializers.Serializer):
    membership = serializers.IntegerField()
    approve = serializers.BooleanField()
