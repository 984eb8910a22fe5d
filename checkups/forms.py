from django import forms
from django.utils.translation import gettext_lazy as _

from checkups.models import PhysicianOpinion


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
