"""Blind indexes: HMAC-SHA-256 of a normalised value under a per-tenant, per-purpose key.

The key is derived with HKDF from the tenant's index secret (tenants.TenantKey, purpose "index"), so
the same person has unrelated index values in two tenants, and a bare hash of a low-entropy number
(an employee or insurance number) cannot be reversed by trying every number without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from healthapp.crypto import keyring

INDEX_KEY_VERSION = 1
SEPARATOR = "\x1f"
_KATAKANA_START, _KATAKANA_END = 0x30A1, 0x30F6  # ァ … ヶ
_KANA_OFFSET = 0x60  # katakana → hiragana


def normalise(value: object, *, kana: bool = False) -> str:
    """NFKC (full-width ASCII → half-width, half-width kana → full-width), no whitespace at all,
    case-folded; with ``kana=True`` katakana is folded to hiragana as well."""
    text = unicodedata.normalize("NFKC", str(value))
    text = "".join(ch for ch in text if not ch.isspace()).casefold()
    if kana:
        text = "".join(
            chr(ord(ch) - _KANA_OFFSET) if _KATAKANA_START <= ord(ch) <= _KATAKANA_END else ch for ch in text
        )
    return text


@lru_cache(maxsize=1024)
def _purpose_key(tenant_id: int, purpose: str, secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"blind-index|{purpose}".encode()).derive(
        secret
    )


def blind_index(tenant_id: int, purpose: str, *parts: object, kana: bool = False) -> str:
    """The hex HMAC of the normalised ``parts`` (joined with a separator that normalisation removes)."""
    secret = keyring.key_bytes(tenant_id, "index", INDEX_KEY_VERSION)
    message = SEPARATOR.join(normalise(part, kana=kana) for part in parts)
    return hmac.new(_purpose_key(tenant_id, purpose, secret), message.encode(), hashlib.sha256).hexdigest()


def insurance_card_index(
    tenant_id: int, *, symbol: str, number: str, relationship: str, sex: str, birth_year_month: str
) -> str:
    """Self-registration lookup: 記号 + 番号 + 続柄 + 性別 + 生年月 (``YYYY-MM``)."""
    return blind_index(tenant_id, "insurance-card", symbol, number, relationship, sex, birth_year_month)
