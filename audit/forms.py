from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from audit.selectors import EventFilter

MAX_EXPORT_DAYS = 400  # a little over the 13 months the database keeps


class EventFilterForm(forms.Form):
    since = forms.DateField(label=_("開始日"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("終了日"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    actor = forms.IntegerField(label=_("操作者ID"), required=False, min_value=1)
    action = forms.CharField(
        label=_("操作"), required=False, max_length=64, widget=forms.TextInput(attrs={"list": "audit-actions"})
    )
    target_type = forms.CharField(label=_("対象の種類"), required=False, max_length=64)
    target_id = forms.CharField(label=_("対象ID"), required=False, max_length=64)

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:  # as the export says it, not an empty list
            raise ValidationError(_("終了日は開始日以降にしてください。"))
        return data

    def to_filter(self) -> EventFilter:
        data = self.cleaned_data
        return EventFilter(
            since=data.get("since"),
            until=data.get("until"),
            actor_id=data.get("actor"),
            action=(data.get("action") or "").strip(),
            target_type=(data.get("target_type") or "").strip(),
            target_id=(data.get("target_id") or "").strip(),
        )


class ExportForm(forms.Form):
    since = forms.DateField(label=_("開始日"), widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("終了日"), widget=forms.DateInput(attrs={"type": "date"}))
    format = forms.ChoiceField(label=_("形式"), choices=[("csv", "CSV"), ("jsonl", "JSON Lines")], initial="csv")

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until:
            if until < since:
                raise ValidationError(_("終了日は開始日以降にしてください。"))
            if until - since > dt.timedelta(days=MAX_EXPORT_DAYS):
                raise ValidationError(_("期間は%(days)d日以内にしてください。") % {"days": MAX_EXPORT_DAYS})
        return data
