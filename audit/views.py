from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from audit.actions import ACTION_LABELS
from audit.forms import EventFilterForm, ExportForm
from audit.selectors import EventFilter, can_view_audit, events_page
from audit.services import export_events


@login_required
def event_list(request: HttpRequest) -> HttpResponse:
    if not can_view_audit(request.user):
        raise Http404
    form = EventFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():  # no list beside the error: an unfiltered one reads as the result
        events, next_cursor = [], ""
    else:
        filters = form.to_filter() if form.is_bound else EventFilter()
        events, next_cursor = events_page(user=request.user, filters=filters, cursor=request.GET.get("after", ""))
    query = request.GET.copy()
    query.pop("after", None)
    return render(
        request,
        "audit/event_list.html",
        {
            "form": form if form.is_bound else EventFilterForm(),
            "events": events,
            "next_cursor": next_cursor,
            "query": query.urlencode(),
            "export_form": ExportForm(),
            "known_actions": sorted(ACTION_LABELS),
        },
    )


@login_required
@require_POST
def export(request: HttpRequest) -> HttpResponse:
    if not can_view_audit(request.user):
        raise Http404
    form = ExportForm(request.POST)
    if not form.is_valid():
        return render(request, "audit/export_invalid.html", {"export_form": form}, status=400)
    data = form.cleaned_data
    file = export_events(user=request.user, since=data["since"], until=data["until"], fmt=data["format"])
    response = HttpResponse(file.body, content_type=file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
    response["Cache-Control"] = "no-store"
    return response
