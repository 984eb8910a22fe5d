from django import template
from django.utils.translation import gettext_lazy as _

from accounts.labels import LABELS, Scope

register = template.Library()
_SCOPES = dict(Scope.CHOICES)


@register.filter
def label_name(code: str) -> str:
    label = LABELS.get(code)
    return str(label.name) if label else code


@register.filter
def scope_name(code: str) -> str:
    return str(_SCOPES.get(code, code))


_FLAGS = {
    "privileged_without_mfa": _("管理権限があるのに多要素認証なし"),
    "inactive_90_days": _("90日以上ログインなし"),
    "grant_expiring_30_days": _("30日以内に期限切れの付与あり"),
    "qualification_ended": _("資格喪失済み"),
}


@register.filter
def flag_name(code: str) -> str:
    return str(_FLAGS.get(code, code))
