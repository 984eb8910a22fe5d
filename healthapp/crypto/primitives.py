"""The sealed-value format: ``format version (1) | key version (4, big-endian) | nonce (12) | ciphertext+tag``.

The header is authenticated as part of the AAD. Sealing and opening live in healthapp.crypto.fields,
the one hot path (every personal field read and written goes through it), written out flat there.
"""

from __future__ import annotations

import struct

from healthapp.crypto.errors import DecryptionError

FORMAT_V1 = 1
NONCE_SIZE = 12
_HEADER = struct.Struct(">BI")
VERSION_HEADER_SIZE = _HEADER.size  # format version + key version
HEADER_SIZE = VERSION_HEADER_SIZE + NONCE_SIZE


def header_for(key_version: int) -> bytes:
    return _HEADER.pack(FORMAT_V1, key_version)


def key_version_of(sealed: bytes) -> int:
    """The data-key version a sealed value names; raises on a truncated value or an unknown format."""
    if len(sealed) < HEADER_SIZE + 16:
        raise DecryptionError("sealed value is truncated")
    if sealed[0] != FORMAT_V1:
        raise DecryptionError(f"unknown sealed-value format {sealed[0]}")
    return int.from_bytes(sealed[1:VERSION_HEADER_SIZE], "big")
