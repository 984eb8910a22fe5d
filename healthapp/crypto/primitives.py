"""The sealed-value format: ``format version (1) | key version (4, big-endian) | nonce (12) | ciphertext+tag``."""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from healthapp.crypto.errors import DecryptionError

FORMAT_V1 = 1
NONCE_SIZE = 12
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size + NONCE_SIZE


def seal(aead: AESGCM, key_version: int, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt under a fresh random 96-bit nonce; the header is authenticated as part of the AAD."""
    header = _HEADER.pack(FORMAT_V1, key_version)
    nonce = os.urandom(NONCE_SIZE)
    return header + nonce + aead.encrypt(nonce, plaintext, header + aad)


def key_version_of(sealed: bytes) -> int:
    if len(sealed) < HEADER_SIZE + 16:
        raise DecryptionError("sealed value is truncated")
    fmt, version = _HEADER.unpack_from(sealed)
    if fmt != FORMAT_V1:
        raise DecryptionError(f"unknown sealed-value format {fmt}")
    return version


def open_sealed(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    key_version_of(sealed)  # validates format and length
    header, nonce, body = sealed[: _HEADER.size], sealed[_HEADER.size : HEADER_SIZE], sealed[HEADER_SIZE:]
    try:
        return aead.decrypt(nonce, body, header + aad)
    except InvalidTag:
        raise DecryptionError("value does not authenticate (wrong key, moved or altered ciphertext)") from None
