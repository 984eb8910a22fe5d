"""Operators' admin for the judgement criteria: every stored version is read-only; "saving" a corrected
set always stores a NEW version (checkups.services.criteria_version_create), so judgements already made
keep the exact criteria they point at."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from checkups import criteria as criteria_data
from checkups import services
from checkups.forms import CriteriaVersionForm
from checkups.models import CriteriaSet
from healthapp.admin_site import ObjectTitleMixin


@admin.register(CriteriaSet)
class CriteriaSetAdmin(ObjectTitleMixin, admin.ModelAdmin):
    form = CriteriaVersionForm
    list_display = ["name", "version", "effective_from", "is_active", "new_version_link", "title"]
    list_filter = ["name", "is_active"]
    ordering = ["name", "-version"]
    actions = ["activate", "deactivate"]

    def object_title(self, obj: CriteriaSet) -> str:
        return _("%(name)s 第%(version)d版") % {"name": obj.name, "version": obj.version}

    # --- stored versions: view only --------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: CriteriaSet | None = None) -> bool:
        return False  # a correction is a new version (the add form), never an edit in place

    def has_delete_permission(self, request: HttpRequest, obj: CriteriaSet | None = None) -> bool:
        return False  # judgements point at their version (PROTECT); history stays

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("checkups.change_criteriaset")

    def get_fields(self, request: HttpRequest, obj: CriteriaSet | None = None) -> list[str]:
        if obj is None:
            return ["name", "title", "effective_from", "is_active", "data"]
        return ["name", "version", "title", "effective_from", "is_active", "created_at", "new_version_link",
                "data_pretty"]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: CriteriaSet | None = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description=_("判定基準（JSON）"))
    def data_pretty(self, obj: CriteriaSet) -> str:
        return format_html("<pre>{}</pre>", criteria_data.dumps(obj.data))

    @admin.display(description=_("訂正"))
    def new_version_link(self, obj: CriteriaSet) -> str:
        url = reverse("admin:checkups_criteriaset_add") + f"?based_on={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("この版をもとに新しい版を作る"))

    # --- a new version ---------------------------------------------------------------------------

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        """The add form starts from the version named by ?based_on= (or the newest of the first set)."""
        based_on = request.GET.get("based_on", "")
        base = CriteriaSet.objects.filter(pk=int(based_on)).first() if based_on.isdigit() else None
        base = base or CriteriaSet.objects.order_by("name", "-version").first()
        if base is None:
            return {}
        return {
            "name": base.name, "title": base.title, "effective_from": timezone.localdate(), "is_active": True,
            "data": {key: value for key, value in base.data.items() if key not in {"name", "title", "effective_from"}},
        }  # fmt: skip

    def save_model(self, request: HttpRequest, obj: CriteriaSet, form: CriteriaVersionForm, change: bool) -> None:
        if change:
            raise PermissionDenied
        data = form.cleaned_data
        created = services.criteria_version_create(
            name=data["name"], title=data["title"], effective_from=data["effective_from"], data=data["data"],
            is_active=data["is_active"], acting_user=request.user,
        )  # fmt: skip
        # The admin goes on with ``obj`` (log entry, redirect): make it the stored row.
        obj.pk, obj.version, obj.data, obj.created_at = created.pk, created.version, created.data, created.created_at
        obj._state.adding, obj._state.db = False, created._state.db

    # --- activation: which versions new judgements may use ---------------------------------------

    @admin.action(description=_("選んだ版を有効にする（新しい判定に使う）"), permissions=["activate"])
    def activate(self, request: HttpRequest, queryset) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description=_("選んだ版を無効にする（新しい判定に使わない）"), permissions=["activate"])
    def deactivate(self, request: HttpRequest, queryset) -> None:
        self._set_active(request, queryset, False)

    def _set_active(self, request: HttpRequest, queryset, active: bool) -> None:
        for criteria_set in queryset:
            services.criteria_version_set_active(criteria_set=criteria_set, active=active, acting_user=request.user)
        self.message_user(
            request, _("%(count)d 件の版を更新しました。既存の判定は変わりません。") % {"count": len(queryset)},
            messages.SUCCESS,
        )  # fmt: skip
