"""Pages for access rights (settings → access rights), the roster, teams and the access review.

Thin: every read goes through accounts.selectors (scoped by accounts.policy), every write through
accounts.services. Anything the user may not see is a 404.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

import audit
from accounts import policy, selectors, services
from accounts.forms import GrantEditForm, GrantForm, TeamForm, TeamJoinForm
from accounts.labels import LABELS, Perm, idle_permissions
from healthapp.csvsafe import csv_response
from healthapp.errors import AppError


def _require(user, perm: str) -> None:
    if not policy.can(user, perm):
        raise Http404


# --- Settings → access rights ------------------------------------------------------------------------


# A refused grant names the field to fix (focused and marked invalid), not only the form.
GRANT_ERROR_FIELDS = {"unknown_employee": "target", "unknown_department": "target", "invalid_target": "target_kind"}


def _grant_refused(form: BaseForm, exc: AppError) -> None:
    field = GRANT_ERROR_FIELDS.get(exc.code)
    form.add_error(field if field in form.fields else None, exc.message)


@login_required
def access_settings(request: HttpRequest) -> HttpResponse:
    offices = list(selectors.offices_for_access_settings(user=request.user))
    office_id = request.GET.get("office") or (offices[0].pk if offices else None)
    if office_id is not None and not str(office_id).isdigit():
        raise Http404  # an edited address: no such office
    office, grants = (None, [])
    if office_id:
        office, grants = selectors.grants_for_office(user=request.user, office_id=int(office_id))
    return render(
        request,
        "accounts/access/settings.html",
        {"offices": offices, "office": office, "grants": grants, "labels": LABELS, "form": GrantForm()},
    )


@login_required
def grant_new(request: HttpRequest, office_id: int) -> HttpResponse:
    office, _grants = selectors.grants_for_office(user=request.user, office_id=office_id)
    form = GrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.label_grant_create(
                office=office, target_kind=data["target_kind"], target=data["target"], labels=data["labels"],
                scope_=data["scope"], valid_from=data["valid_from"], valid_until=data["valid_until"],
                acting_user=request.user,
            )  # fmt: skip
        except AppError as exc:
            _grant_refused(form, exc)
        else:
            messages.success(request, _("ラベルを付与しました。"))
            _warn_idle(request, data["labels"], data["scope"])
            return redirect(f"{reverse('accounts:access-settings')}?office={office.pk}")
    return render(request, "accounts/access/grant_form.html", {"office": office, "form": form, "grant": None})


def _warn_idle(request: HttpRequest, labels: list[str], scope: str) -> None:
    """Say which of the labels' rights this scope leaves idle (they work with 全体 only)."""
    if idle := idle_permissions(labels, scope):
        messages.warning(
            request,
            _("この範囲では %(rights)s は働きません（範囲「全体」の付与でのみ有効です）。")
            % {"rights": pgettext("list separator", "、").join(idle)},
        )


@login_required
def grant_edit(request: HttpRequest, grant_id: int) -> HttpResponse:
    grant = selectors.grant_get_for_user(user=request.user, grant_id=grant_id)
    initial = {
        "labels": grant.labels,
        "scope": grant.scope,
        "valid_from": grant.valid_from,
        "valid_until": grant.valid_until,
    }
    form = GrantEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.label_grant_update(
                grant=grant, labels=data["labels"], scope_=data["scope"], valid_from=data["valid_from"],
                valid_until=data["valid_until"], acting_user=request.user,
            )  # fmt: skip
        except AppError as exc:
            _grant_refused(form, exc)
        else:
            messages.success(request, _("ラベルを変更しました。"))
            _warn_idle(request, data["labels"], data["scope"])
            return redirect(f"{reverse('accounts:access-settings')}?office={grant.office_id}")
    return render(request, "accounts/access/grant_form.html", {"office": grant.office, "form": form, "grant": grant})


@login_required
def grant_delete(request: HttpRequest, grant_id: int) -> HttpResponse:
    """GET asks for confirmation; POST removes the grant."""
    grant = selectors.grant_get_for_user(user=request.user, grant_id=grant_id)
    if request.method == "POST":
        office_id = grant.office_id
        try:
            services.label_grant_delete(grant=grant, acting_user=request.user)
        except AppError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("ラベルの付与を取り消しました。"))
        return redirect(f"{reverse('accounts:access-settings')}?office={office_id}")
    return render(request, "accounts/access/grant_confirm_delete.html", {"grant": grant, "labels": LABELS})


@login_required
def access_review(request: HttpRequest) -> HttpResponse:
    if not policy.can_tenant_wide(request.user, Perm.ACCESS_MANAGE):  # every login of the tenant is listed
        raise Http404
    rows = selectors.access_review()
    if request.GET.get("format") == "csv":
        audit.record(action="export.downloaded", target_type="access_review", details={"rows": len(rows)})
        return csv_response("access-review.csv", selectors.ACCESS_REVIEW_HEADER, selectors.access_review_table(rows))
    return render(request, "accounts/access/review.html", {"rows": rows, "labels": LABELS})


# --- Roster ---------------------------------------------------------------------------------------------


ROSTER_SEARCHES = "roster_searches"  # session key: search token → what was typed (the newest few)


@login_required
def roster(request: HttpRequest) -> HttpResponse:
    """The roster; a search is POSTed and kept in the session behind a random token (``?s=…``), so the name
    or employee number typed never sits in an address: not in access logs, browser history or a Referer."""
    _require(request.user, Perm.MEMBER_VIEW)
    searches: dict[str, str] = request.session.get(ROSTER_SEARCHES, {})
    if request.method == "POST":
        query = request.POST.get("q", "").strip()[:100]
        if not query:
            return redirect("accounts:roster")
        token = secrets.token_urlsafe(9)
        request.session[ROSTER_SEARCHES] = {**dict(list(searches.items())[-9:]), token: query}
        return redirect(f"{reverse('accounts:roster')}?{urlencode({'s': token})}")
    token = request.GET.get("s", "")
    query = searches.get(token, "")
    if token and not query:
        messages.info(request, _("この検索は期限が切れました（ログインし直すと消えます）。もう一度検索してください。"))
    search = selectors.members_search(user=request.user, query=query, page=request.GET.get("page"), search_id=token)
    pager_query = urlencode({"s": token}) + "&" if query else ""
    return render(
        request,
        "accounts/roster/list.html",
        {"members": search.page, "page": search.page, "search": search, "query": query, "pager_query": pager_query,
         "card": _card(request.user), "partial_limit": selectors.PARTIAL_SEARCH_LIMIT},
    )  # fmt: skip


def _card(user) -> bool:
    return selectors.card_visible(user)


@login_required
def roster_member(request: HttpRequest, member_id: int) -> HttpResponse:
    member = selectors.member_get_for_user(user=request.user, member_id=member_id)
    audit.record(action="member.viewed", target_type="member", target_id=member.pk)
    context = {"member": member, "card": _card(request.user), "identity": selectors.identity_visible(request.user)}
    return render(request, "accounts/roster/detail.html", context)


# --- Teams ------------------------------------------------------------------------------------------------


@login_required
def teams(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(acting_user=request.user, **form.cleaned_data)
        except AppError as exc:
            form.add_error("display_name" if "display_name" in exc.code else None, exc.message)
        else:
            messages.success(request, _("チームを作りました。"))
            return redirect("accounts:team", team_id=team.pk)
    return render(
        request,
        "accounts/teams/list.html",
        {"teams": selectors.teams_for_user(user=request.user), "form": form,
         "can_dissolve": policy.can_tenant_wide(request.user, Perm.TEAM_MANAGE)},
    )  # fmt: skip


@login_required
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    team = selectors.team_get(team_id=team_id)
    return _team_page(request, team, TeamJoinForm())


def _team_page(request: HttpRequest, team, join_form: TeamJoinForm, status: int = 200) -> HttpResponse:
    memberships = selectors.team_memberships(team=team)
    mine = next((m for m in memberships if m.user_id == request.user.pk), None)
    members = [m for m in memberships if m.status == "member"]
    # Who is in a team is for its members: a team's theme can say something about their health.
    sees_members = mine is not None and mine.status == "member"
    return render(
        request,
        "accounts/teams/detail.html",
        {
            "team": team,
            "member_count": len(members),
            "members": members if sees_members else [],
            "sees_members": sees_members,
            "pending": [m for m in memberships if m.status == "pending"],
            "mine": mine,
            "join_form": join_form,
            "can_decide": services.team_can_decide(team=team, user=request.user),
            "can_dissolve": policy.can_tenant_wide(request.user, Perm.TEAM_MANAGE),
        },
        status=status,
    )


@login_required
@require_POST
def team_action(request: HttpRequest, team_id: int, action: str) -> HttpResponse:
    team = selectors.team_get(team_id=team_id)
    try:
        if action == "join":
            form = TeamJoinForm(request.POST)
            if form.is_valid():
                try:
                    services.team_request_join(team=team, acting_user=request.user, **form.cleaned_data)
                except AppError as exc:  # the name is taken: ask for another, keep what was typed
                    form.add_error("display_name" if "display_name" in exc.code else None, exc.message)
            if form.errors:
                return _team_page(request, team, form, status=400)
            messages.success(
                request, _("参加を申請しました。") if team.join_policy == "approval" else _("参加しました。")
            )
        elif action == "leave":
            services.team_leave(team=team, acting_user=request.user)
            messages.success(request, _("チームを抜けました。"))
        elif action in {"approve", "reject"}:
            membership = next(
                (m for m in selectors.team_memberships(team=team) if str(m.pk) == request.POST.get("membership")), None
            )
            if membership is None:
                raise Http404
            services.team_decide(membership=membership, approve=action == "approve", acting_user=request.user)
            messages.success(request, _("承認しました。") if action == "approve" else _("見送りました。"))
        elif action == "dissolve":
            services.team_dissolve(team=team, acting_user=request.user)
            messages.success(request, _("チームを解散しました。"))
            return redirect("accounts:teams")
        else:
            raise Http404
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:team", team_id=team.pk)
