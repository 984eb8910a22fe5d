"""The sealed-value format: ``format version (1) | key version (4, big-endian) | nonce (12) | ciphertext+tag``."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from healthapp.crypto.errors import DecryptionError

FORMAT_V1 = 1
NONCE_SIZE = 12
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size + NONCE_SIZE


def header_for(key_version: int) -> bytes:
    return _HEADER.pack(FORMAT_V1, key_version)


def seal(aead: AESGCM, header: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt under a fresh random 96-bit nonce; the header is authenticated as part of the AAD."""
    nonce = os.urandom(NONCE_SIZE)
    return header + nonce + aead.encrypt(nonce, plaintext, header + aad)


def key_version_of(sealed: bytes) -> int:
    """The data-key version a sealed value names; raises on a truncated value or an unknown format."""
    if len(sealed) < HEADER_SIZE + 16:
        raise DecryptionError("sealed value is truncated")
    if sealed[0] != FORMAT_V1:
        raise DecryptionError(f"unknown sealed-value format {sealed[0]}")
    return int.from_bytes(sealed[1:5], "big")


def unseal(sealed: bytes, aad: bytes, cipher_for: Callable[[int, int], AESGCM], owner: int) -> bytes:
    """Decrypt with the cipher ``cipher_for(owner, key version)`` returns; raises DecryptionError,
    never returns anything but the authenticated plaintext."""
    if len(sealed) < HEADER_SIZE + 16 or sealed[0] != FORMAT_V1:
        key_version_of(sealed)  # raises with the precise reason
    header = sealed[:5]
    aead = cipher_for(owner, int.from_bytes(header[1:], "big"))
    try:
        return aead.decrypt(sealed[5:HEADER_SIZE], sealed[HEADER_SIZE:], header + aad)
    except InvalidTag:
        raise DecryptionError("value does not authenticate (wrong key, moved or altered ciphertext)") from None
