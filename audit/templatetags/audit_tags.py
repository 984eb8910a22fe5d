from django import template

from audit.actions import ACTION_LABELS
from audit.selectors import can_view_audit as _can_view_audit

register = template.Library()


@register.filter
def can_view_audit(user) -> bool:
    return _can_view_audit(user)


@register.filter
def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, ""))
