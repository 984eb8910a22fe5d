"""The API under /api/v1/: the same services and the same policy as the pages.

Every tenant endpoint derives from ``TenantScopedViewSet``: it cannot override how objects are found
(``get_queryset``/``get_object``), only say which permission it needs and what its scoped queryset is.
Anything outside the caller's tenant or scope, or behind a permission they lack, is a 404.
"""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import policy, selectors, services
from accounts.labels import Perm
from accounts.models import LabelGrant, Member, Team
from accounts.serializers import (
    GrantSerializer,
    GrantWriteSerializer,
    MemberSerializer,
    MeSerializer,
    TeamDecisionSerializer,
    TeamJoinSerializer,
    TeamSerializer,
)
from tenants.models import Office

ANY_TENANT_USER = "tenant.user"  # every logged-in user of the tenant (teams are for everyone)


class MeView(APIView):
    """The logged-in user: e-mail, role and tenant."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)


class TenantScopedViewSet(viewsets.GenericViewSet):
    permission: str = ""
    tenant_wide = False  # the permission must be held over the whole tenant (the importers)
    _sealed = ("get_queryset", "get_object", "initial")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = [name for name in cls._sealed if name in cls.__dict__]
        if overridden:
            raise TypeError(f"{cls.__name__} must not override {overridden}: implement scoped_queryset()")
        if not cls.permission:
            raise TypeError(f"{cls.__name__} must name the permission it needs")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        user = request.user
        if user.tenant_id is None:
            raise Http404
        if self.permission != ANY_TENANT_USER and not policy.can(user, self.permission):
            raise Http404
        if self.tenant_wide and not policy.can_tenant_wide(user, self.permission):
            raise Http404

    def scoped_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        return self.scoped_queryset()


class MembersViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Roster entries inside the caller's member.view scope."""

    permission = Perm.MEMBER_VIEW
    serializer_class = MemberSerializer
    queryset = Member.all_tenants.none()  # the schema reads the model from it; requests use scoped_queryset

    def scoped_queryset(self):
        return selectors.members_visible_to(user=self.request.user)

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        import audit

        audit.record(action="member.viewed", target_type="member", target_id=response.data["id"])
        return response


class GrantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet):
    """Permission-label grants (access.manage)."""

    permission = Perm.ACCESS_MANAGE
    tenant_wide = True  # as the settings pages (accounts.selectors.offices_for_access_settings)
    serializer_class = GrantSerializer
    queryset = LabelGrant.all_tenants.none()

    def scoped_queryset(self):
        grants = LabelGrant.objects.select_related("office", "member", "department").order_by("pk")
        office = self.request.query_params.get("office")
        if office and not office.isdigit():
            raise ValidationError({"office": [_("事業所の ID（数字）を指定してください。")]})
        return grants.filter(office_id=office) if office else grants

    @extend_schema(request=GrantWriteSerializer, responses={201: GrantSerializer})
    def create(self, request: Request) -> Response:
        data = _valid(GrantWriteSerializer, request.data)
        office = Office.objects.filter(pk=data["office"]).first()
        if office is None:
            raise Http404
        grant = services.label_grant_create(
            office=office, target_kind=data["target_kind"], target=data["target"], labels=data["labels"],
            scope_=data["scope"], valid_from=data.get("valid_from"), valid_until=data.get("valid_until"),
            acting_user=request.user,
        )  # fmt: skip
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GrantWriteSerializer, responses=GrantSerializer)
    def partial_update(self, request: Request, pk=None) -> Response:
        grant = self.get_object()
        data = _valid(GrantWriteSerializer, request.data, partial=True)
        grant = services.label_grant_update(
            grant=grant, labels=data.get("labels", grant.labels), scope_=data.get("scope", grant.scope),
            valid_from=data.get("valid_from", grant.valid_from), valid_until=data.get("valid_until", grant.valid_until),
            acting_user=request.user,
        )  # fmt: skip
        return Response(GrantSerializer(grant).data)

    def perform_destroy(self, instance: LabelGrant) -> None:
        services.label_grant_delete(grant=instance, acting_user=self.request.user)


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Teams: everyone lists, creates, joins and leaves; team admins decide; team.manage dissolves."""

    permission = ANY_TENANT_USER
    serializer_class = TeamSerializer
    queryset = Team.all_tenants.none()

    def scoped_queryset(self):
        return Team.objects.filter(dissolved_at__isnull=True).order_by("name", "pk")

    @extend_schema(request=TeamSerializer, responses={201: TeamSerializer})
    def create(self, request: Request) -> Response:
        data = _valid(TeamSerializer, request.data)
        team = services.team_create(
            name=data["name"], description=data.get("description", ""), join_policy=data["join_policy"],
            display_name=data["display_name"], acting_user=request.user,
        )  # fmt: skip
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamJoinSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def join(self, request: Request, pk=None) -> Response:
        team = self.get_object()
        data = _valid(TeamJoinSerializer, request.data)
        services.team_request_join(team=team, display_name=data["display_name"], acting_user=request.user)
        return Response(TeamSerializer(team).data)

    @extend_schema(request=None, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def leave(self, request: Request, pk=None) -> Response:
        team = self.get_object()
        services.team_leave(team=team, acting_user=request.user)
        return Response(TeamSerializer(team).data)

    @extend_schema(request=TeamDecisionSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk=None) -> Response:
        team = self.get_object()
        data = _valid(TeamDecisionSerializer, request.data)
        membership = next((m for m in selectors.team_memberships(team=team) if m.pk == data["membership"]), None)
        if membership is None:
            raise Http404
        services.team_decide(membership=membership, approve=data["approve"], acting_user=request.user)
        return Response(TeamSerializer(team).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def dissolve(self, request: Request, pk=None) -> Response:
        services.team_dissolve(team=self.get_object(), acting_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _valid(serializer_class, data, *, partial: bool = False) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
