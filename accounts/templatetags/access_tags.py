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


@register.filter
def source_name(source: str) -> str:
    """Where a label comes from, in words: role → ロールの既定, department:営業部 → 部署 営業部,
    employee:E00001 → 社員番号 E00001 (the CSV keeps the codes)."""
    kind, _sep, value = source.partition(":")
    if kind == "role":
        return str(_("ロールの既定"))
    if kind == "department":
        return str(_("部署 %(name)s") % {"name": value})
    if kind == "employee":
        return str(_("社員番号 %(number)s") % {"number": value})
    return source


_FLAGS = {
    "privileged_without_mfa": _("管理権限があるのに多要素認証なし"),
    "inactive_90_days": _("90日以上ログインなし"),
    "never_logged_in": _("一度もログインしていない"),
    "no_login": _("ログイン未登録（利用登録すると有効）"),
    "grant_expiring_30_days": _("30日以内に期限切れの付与あり"),
    "qualification_ended": _("資格喪失済み"),
}


@register.filter
def flag_name(code: str) -> str:
    return str(_FLAGS.get(code, code))
