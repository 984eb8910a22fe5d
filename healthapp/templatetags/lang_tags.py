"""Language of parts (WCAG 3.1.2): data typed in Japanese, shown on a page in another language.

The page's ``<html lang>`` is the reader's language; names of people, offices, departments, teams,
institutions and an opinion's text stay as they were typed. On an English page a screen reader would read
them with English rules (or spell them out) unless they are marked ``lang="ja"``. Built in for every
template (settings.TEMPLATES ``builtins``): ``{{ member.name|ja }}``.
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()

# Kana, CJK ideographs (with extension A and the compatibility block), the CJK punctuation block and the
# full-width forms: text with any of them is Japanese for a reader's voice.
_JAPANESE = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


@register.filter(is_safe=True, needs_autoescape=True)
def ja(value: object, autoescape: bool = True) -> SafeString | object:
    """``value`` escaped, in ``<span lang="ja">`` when the page is not Japanese and the text is. Where
    autoescaping is off (a plain-text mail's template) there is no markup to add: the value as it is."""
    if value is None or value == "" or not autoescape:
        return value
    text = str(value)
    if (get_language() or "ja").startswith("ja") or not _JAPANESE.search(text):
        return conditional_escape(value)
    return format_html('<span lang="ja">{}</span>', value)
