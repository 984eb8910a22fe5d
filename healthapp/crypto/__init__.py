"""Envelope encryption of personal data (MISSION P1-P2).

master key (KEK, kek.py) ─wraps→ per-tenant data keys (tenants.TenantKey, keyring.py)
                         ─seal→ field values (fields.py: AES-256-GCM, AAD = tenant|model|field|row)
per-tenant index secret ─HKDF→ blind-index keys (blind_index.py: HMAC-SHA-256 over normalised values)
"""
