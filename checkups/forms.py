import json

from django import forms
from django.utils.translation import gettext_lazy as _

from checkups import criteria as criteria_data
from checkups import services
from checkups.models import CriteriaSet, GuidanceSupport, PhysicianOpinion
from healthapp.errors import AppError


class OpinionForm(forms.Form):
    fitness = forms.ChoiceField(label=_("就業判定"), choices=PhysicianOpinion.Fitness.choices, widget=forms.RadioSelect)
    restrictions = forms.MultipleChoiceField(
        label=_("就業制限の内容"), choices=PhysicianOpinion.RESTRICTIONS, required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    follow_up = forms.ChoiceField(label=_("事後措置"), choices=PhysicianOpinion.FollowUp.choices)
    opinion = forms.CharField(
        label=_("意見"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4})
    )

    @staticmethod
    def initial_from(opinion: PhysicianOpinion | None) -> dict:
        """The form filled with the opinion in force, so that an edit changes it instead of retyping it."""
        if opinion is None:
            return {}
        return {
            "fitness": opinion.fitness, "restrictions": list(opinion.restrictions or []),
            "follow_up": opinion.follow_up, "opinion": opinion.opinion,
        }  # fmt: skip

    def clean(self) -> dict:
        """The service's rules (services.physician_opinion_check), shown on the form before anything is signed."""
        cleaned = super().clean()
        if not self.errors:
            try:
                services.physician_opinion_check(
                    fitness=cleaned["fitness"], follow_up=cleaned["follow_up"], restrictions=cleaned["restrictions"]
                )
            except AppError as exc:
                # Beside the field to change (focused when the form comes back, static/js/first_error.js).
                self.add_error(self.ERROR_FIELDS.get(exc.code), exc.message)
        return cleaned

    ERROR_FIELDS = {
        "invalid_opinion": "fitness",
        "restrictions_missing": "restrictions",
        "restrictions_not_allowed": "restrictions",
        "invalid_restriction": "restrictions",
    }


class FollowUpVisitForm(forms.Form):
    """受診しました: the date of the follow-up visit (an undo posts ``undo`` instead)."""

    visited_on = forms.DateField(label=_("受診日"), widget=forms.DateInput(attrs={"type": "date"}))


class GoalSelect(forms.NullBooleanSelect):
    """達成 / 未達成 / 記録しない, read back as it was stored (a plain Select would show True as no option)."""

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs)
        self.choices = [("unknown", _("記録しない")), ("true", _("達成")), ("false", _("未達成"))]


class GuidanceSupportForm(forms.Form):
    """特定保健指導の記録: its state with the 初回面接 and, once over, the 実績評価 (or the day it ended)."""

    status = forms.ChoiceField(
        label=_("実施状況"),
        choices=[(s.value, s.label) for s in GuidanceSupport.Status if s != GuidanceSupport.Status.WITHDRAWN],
        widget=forms.RadioSelect,
    )
    started_on = forms.DateField(label=_("初回面接日"), widget=forms.DateInput(attrs={"type": "date"}))
    method = forms.ChoiceField(
        label=_("初回面接の形態"), choices=[("", _("選んでください")), *GuidanceSupport.Method.choices]
    )
    ended_on = forms.DateField(
        label=_("実績評価日（途中終了の場合は終了日）"), required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    goal_met = forms.NullBooleanField(
        label=_("腹囲2cm・体重2kg減"), required=False, widget=GoalSelect,
        help_text=_("実績評価のときだけ記録されます。"),
    )  # fmt: skip

    # The service's refusals, beside the field to change (focused when the form comes back).
    ERROR_FIELDS = {
        "start_required": "started_on",
        "start_before_exam": "started_on",
        "start_in_future": "started_on",
        "end_in_future": "ended_on",
        "end_required": "ended_on",
        "evaluation_too_early": "ended_on",
        "end_before_start": "ended_on",
        "end_while_in_progress": "ended_on",
        "method_required": "method",
        "invalid_status": "status",
    }

    @staticmethod
    def initial_from(support: GuidanceSupport | None) -> dict:
        """The form filled with the guidance as it stands (a first entry starts as 実施中)."""
        if support is None:
            return {"status": GuidanceSupport.Status.IN_PROGRESS}
        return {
            "status": support.status, "started_on": support.started_on, "method": support.method,
            "ended_on": support.ended_on, "goal_met": support.goal_met,
        }  # fmt: skip


class CriteriaVersionForm(forms.ModelForm):
    """A corrected criteria set for the operators' admin; saving always stores a new version."""

    data = forms.CharField(
        label=_("判定基準（JSON）"), widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "spellcheck": "false"})
    )

    class Meta:
        model = CriteriaSet
        fields = ["name", "title", "effective_from", "is_active", "data"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "name" in self.fields:  # the add form (the admin shows stored versions read-only, without fields)
            names = CriteriaSet.objects.order_by("name").values_list("name", flat=True).distinct()
            self.fields["name"] = forms.ChoiceField(label=_("判定基準の名前"), choices=[(n, n) for n in names])
            self.fields["title"].widget.attrs["size"] = 80
            self.fields["effective_from"].help_text = _("この日以降の判定から使われます。")
            self.fields["is_active"].help_text = _("外すと、この版は新しい判定に使われません。")
        if isinstance(self.initial.get("data"), dict):
            self.initial["data"] = criteria_data.dumps(self.initial["data"])

    def clean_data(self) -> dict:
        try:
            document = json.loads(self.cleaned_data["data"])
        except json.JSONDecodeError as exc:
            message = _("JSON として読めません（%(line)s 行 %(column)s 列）。")
            raise forms.ValidationError(message, params={"line": exc.lineno, "column": exc.colno}) from exc
        if not isinstance(document, dict):
            raise forms.ValidationError(_("判定基準は JSON のオブジェクト（{ … }）で入力してください。"))
        return document

    def clean(self) -> dict:
        """Check the document exactly as the new version would store it (CriteriaError → form errors)."""
        cleaned = super().clean()
        if not self.errors:
            try:
                services.criteria_version_check(
                    name=cleaned["name"], title=cleaned["title"], effective_from=cleaned["effective_from"],
                    data=cleaned["data"],
                )  # fmt: skip
            except criteria_data.CriteriaError as exc:
                self.add_error("data", exc.messages)
        return cleaned
