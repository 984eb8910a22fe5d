from decimal import Decimal

from django import template
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext, pgettext_lazy

from checkups import models, services

register = template.Library()

# What each grade means, in plain words for the person it is about.
_EXPLAINED = {
    "A": _("基準の範囲内です。"),
    "B": _("わずかに基準を外れていますが、日常生活に支障はありません。"),
    "C": _("生活習慣の見直しと、必要に応じて再検査をおすすめします。"),
    "D": _("医療機関で詳しい検査や治療を受けてください。"),
    "E": _("治療中の項目です。主治医の指示に従ってください。"),
}


# A result against the MHLW judgement values (保健指導判定値 / 受診勧奨判定値), what the physician's
# opinion and the follow-up recommendation rest on by law.
_MHLW_LEVELS = {
    "normal": pgettext_lazy(
        "MHLW level", "基準範囲内"
    ),  # a column of its own (the provider's flag reads on in a sentence)
    "guidance": _("保健指導判定値に該当"),
    "referral": _("受診勧奨判定値に該当"),
}


# The 保健指導 level and the metabolic-syndrome result are stored as the MHLW's own words (the XML's answer
# texts); shown in the reader's language.
_JUDGED_WORDS = {
    "積極的支援": _("積極的支援"), "動機付け支援": _("動機付け支援"), "情報提供": _("情報提供"),
    "判定不能": _("判定不能"), "対象外": _("対象外"), "未判定": _("未判定"),
    "基準該当": _("基準該当"), "予備群": _("予備群"), "非該当": _("非該当"),
}  # fmt: skip


@register.filter
def judged_label(value: str | None) -> str:
    """積極的支援 → "Active support" in English; a stored word we do not know, as stored."""
    return str(_JUDGED_WORDS.get(value or "", value or ""))


@register.filter
def fiscal_year(year: int | None) -> str:
    """2025 → 2025年度 (FY2025 in English)."""
    return _("%(year)s年度") % {"year": year} if year else ""


# For an item the grading leaves out (随時血糖, 尿蛋白) but the MHLW values judge: what it means, to the person.
_MHLW_EXPLAINED = {
    "normal": _("特定健診の基準の範囲内です。"),
    "guidance": _("特定健診の基準では、生活習慣の改善（保健指導）をおすすめする値です。"),
    "referral": _("特定健診の基準では、医療機関の受診をおすすめする値です。"),
}


@register.filter
def mhlw_explained(level: str | None) -> str:
    return str(_MHLW_EXPLAINED.get(level or "", ""))


@register.filter
def mhlw_label(level: str | None) -> str:
    return str(_MHLW_LEVELS.get(level or "", ""))


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def age_on(birth_date, day):
    """The age on ``day`` (a record's exam date: the physician reads the age at the checkup); None without
    a birth date."""
    return None if birth_date is None else services.age_on(birth_date, day)


@register.filter
def grade_explained(grade: str | None) -> str:
    return str(_EXPLAINED.get(grade or "", ""))


@register.filter
def normalize(value):
    """1.500 → 1.5, 120.000 → 120: results as a person writes them."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return value


@register.filter
def interpretation_label(code: str | None) -> str:
    """H → 高値; a code we do not know, as given."""
    return models.interpretation_label(code)


# UCUM unit codes as they are stored (the MHLW format uses them) → as people write them.
_UNIT_LABELS = {"mm[Hg]": "mmHg", "kg/m2": "kg/m²"}


@register.filter
def unit_label(unit: str | None) -> str:
    """A stored unit as a person reads it: mm[Hg] → mmHg, kg/m2 → kg/m²; others as stored."""
    return _UNIT_LABELS.get(unit or "", unit or "")


@register.filter
def with_unit(label: str, unit: str | None) -> str:
    """A chart's caption: 体重（kg）; a name that ends in brackets already takes the unit inside them,
    HbA1c（NGSP・%） / HbA1c (NGSP, %), not HbA1c（NGSP）（%）."""
    if not unit:
        return label
    unit = unit_label(unit)
    for close, separator in (("）", "・"), (")", ", ")):
        if label.endswith(close):
            return f"{label[:-1]}{separator}{unit}{close}"
    return f"{label}{pgettext('bracket', '（')}{unit}{pgettext('bracket', '）')}"
