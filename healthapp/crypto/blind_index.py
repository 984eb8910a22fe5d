"""Blind indexes: HMAC-SHA-256 of a normalised value under a per-tenant, per-purpose key.

The key is derived with HKDF from the tenant's index secret (tenants.TenantKey, purpose "index"), so
the same person has unrelated index values in two tenants, and a bare hash of a low-entropy number
(an employee or insurance number) cannot be reversed by trying every number without the key.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Callable

from healthapp.crypto import keyring

SEPARATOR = "\x1f"
# Katakana ァ (U+30A1) … ヶ (U+30F6) → the hiragana 0x60 code points below.
_KANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}


def normalise(value: object, *, kana: bool = False) -> str:
    """NFKC (full-width ASCII → half-width, half-width kana → full-width), no whitespace at all,
    case-folded; with ``kana=True`` katakana is folded to hiragana as well."""
    text = str(value)
    if text.isascii():  # NFKC leaves ASCII alone and case folding keeps it ASCII: one pass suffices
        return "".join(text.split()).lower()
    # Case folding can leave text that NFKC would change again (and that NFKC can expose spaces):
    # repeat until stable, so normalising a normalised value is a no-op and typed input always meets
    # the stored index. Only folding can break stability, and is_normalized detects that cheaply.
    for _ in range(4):
        text = "".join(unicodedata.normalize("NFKC", text).split()).casefold()
        if kana:
            text = text.translate(_KANA_TO_HIRAGANA)
        if unicodedata.is_normalized("NFKC", text):
            break
    return text


def blind_index(tenant_id: int, purpose: str, *parts: object, kana: bool = False) -> str:
    """The hex HMAC of the normalised ``parts`` (joined with a separator that normalisation removes)."""
    return hmac.digest(keyring.index_key(tenant_id, purpose), _message(parts, kana), "sha256").hex()


def _message(parts: tuple, kana: bool) -> bytes:
    if len(parts) == 1:  # the common case (employee number, name, e-mail): no list, no join
        return normalise(parts[0], kana=kana).encode()
    return SEPARATOR.join([normalise(part, kana=kana) for part in parts]).encode()


def indexer(tenant_id: int, purpose: str, *, kana: bool = False) -> Callable[..., str]:
    """``blind_index`` of one purpose, for many values: the key is looked up once (an import's rows).
    Use it for one batch of work; it keeps the key for as long as it lives."""
    key = keyring.index_key(tenant_id, purpose)
    digest = hmac.digest

    def index(*parts: object) -> str:
        return digest(key, _message(parts, kana), "sha256").hex()

    return index


def insurance_card_index(
    tenant_id: int,
    *,
    symbol: str,
    number: str,
    relationship: str,
    sex: str,
    birth_year_month: str,
    index: Callable[..., str] | None = None,
) -> str:
    """Self-registration lookup: 記号 + 番号 + 続柄 + 性別 + 生年月 (``YYYY-MM``). ``index``: the
    caller's ``indexer`` of purpose "insurance-card", for many cards."""
    index = index or indexer(tenant_id, "insurance-card")
    return index(symbol, number, relationship, sex, birth_year_month)
