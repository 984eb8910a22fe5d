"""Sealed files: an upload held at rest (private storage, local or S3) encrypted under its tenant's data key.

An uploaded roster or checkup file is personal data in clear from upload to apply, which can be days
for a preview nobody confirms. It is stored sealed instead, in blocks, so that a worker can still seek
to a chunk's byte offset and decrypt only from there:

    header: MAGIC (8) | data-key version (4, big-endian) | block size (4) | file id (16, random)
    blocks: nonce (12) | AES-256-GCM ciphertext of up to ``block size`` bytes + tag (16)

Each block's AAD is the header, the tenant, the block's index and whether it is the last one, so blocks
cannot be reordered, dropped from the end, or spliced in from another file or tenant.
"""

from __future__ import annotations

import io
import os
import struct
from typing import IO

from cryptography.exceptions import InvalidTag

from healthapp.crypto import keyring
from healthapp.crypto.errors import DecryptionError

MAGIC = b"\x00HSEAL1\x00"  # a NUL: no CSV or XML file a person uploads starts like this
_HEADER = struct.Struct(">8sII16s")
HEADER_SIZE = _HEADER.size
BLOCK_SIZE = 64 * 1024
_NONCE, _TAG = 12, 16


def _aad(header: bytes, tenant_id: int, index: int, last: bool) -> bytes:
    return header + b"%d|%d|%d" % (tenant_id, index, last)


class SealingWriter:
    """Seals what is written to it into ``sink`` block by block; ``finish()`` seals the last block
    (possibly empty) and must be called once everything is written."""

    def __init__(self, sink: IO[bytes], tenant_id: int) -> None:
        aead, version_header = keyring.active_cipher(tenant_id)
        version = int.from_bytes(version_header[1:], "big")
        self._sink, self._tenant_id, self._encrypt = sink, tenant_id, aead.encrypt
        self._header = _HEADER.pack(MAGIC, version, BLOCK_SIZE, os.urandom(16))
        self._pending = bytearray()
        self._index = 0
        sink.write(self._header)

    def write(self, data: bytes) -> None:
        self._pending += data
        # Hold back at least one byte: only finish() knows which block is the last.
        while len(self._pending) > BLOCK_SIZE:
            self._seal(bytes(self._pending[:BLOCK_SIZE]), last=False)
            del self._pending[:BLOCK_SIZE]

    def finish(self) -> None:
        self._seal(bytes(self._pending), last=True)
        self._pending.clear()

    def _seal(self, plain: bytes, *, last: bool) -> None:
        nonce = os.urandom(_NONCE)
        aad = _aad(self._header, self._tenant_id, self._index, last)
        self._sink.write(nonce + self._encrypt(nonce, plain, aad))
        self._index += 1


class SealedReader(io.RawIOBase):
    """Read-only, seekable plaintext view of a sealed file (decrypts one block at a time)."""

    def __init__(self, raw: IO[bytes], tenant_id: int) -> None:
        super().__init__()
        raw.seek(0)
        header = raw.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE:
            raise DecryptionError("sealed file is truncated")
        magic, version, block_size, _file_id = _HEADER.unpack(header)
        if magic != MAGIC or not 0 < block_size <= 2**24:
            raise DecryptionError("not a sealed file")
        raw.seek(0, io.SEEK_END)
        stored = raw.tell() - HEADER_SIZE
        stride = _NONCE + block_size + _TAG
        self._blocks = max(1, -(-stored // stride))
        last_size = stored - (self._blocks - 1) * stride - _NONCE - _TAG
        if last_size < 0:
            raise DecryptionError("sealed file is truncated")
        self._raw, self._tenant_id, self._header = raw, tenant_id, header
        self._decrypt = keyring.aead_for(tenant_id, version).decrypt
        self._block_size, self._stride = block_size, stride
        self._size = (self._blocks - 1) * block_size + last_size
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def _block(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        self._raw.seek(HEADER_SIZE + index * self._stride)
        sealed = self._raw.read(self._stride)
        last = index == self._blocks - 1
        try:
            plain = self._decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(self._header, self._tenant_id, index, last))
        except InvalidTag:
            raise DecryptionError("sealed file does not authenticate (wrong key, altered or cut)") from None
        self._cached = (index, plain)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        if self._position >= self._size:
            return 0
        index, start = divmod(self._position, self._block_size)
        chunk = self._block(index)[start : start + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_sealed(raw: IO[bytes], tenant_id: int, *, sealed_only: bool = False) -> IO[bytes]:
    """A buffered plaintext reader over ``raw``; a file stored before uploads were sealed (no MAGIC)
    is read as it is, unless ``sealed_only``: then it is refused (DecryptionError), for files that were
    always sealed, whose bytes swapped in storage must never be read as this application's own."""
    raw.seek(0)
    if raw.read(len(MAGIC)) != MAGIC:
        if sealed_only:
            raw.close()
            raise DecryptionError("not a sealed file: refused")
        raw.seek(0)
        return raw
    return io.BufferedReader(SealedReader(raw, tenant_id), buffer_size=BLOCK_SIZE)


def sealed_version(raw: IO[bytes]) -> int | None:
    """The data-key version a sealed file is under (from its header); None for a file stored in clear."""
    raw.seek(0)
    header = raw.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE or header[: len(MAGIC)] != MAGIC:
        return None
    return _HEADER.unpack(header)[1]


def reseal(raw: IO[bytes], sink: IO[bytes], tenant_id: int, *, sealed_only: bool = False) -> None:
    """Write the plaintext of ``raw`` into ``sink`` sealed anew under the tenant's active data key (a new
    file id and nonces; the plaintext and so every offset into it stay the same). Closes ``raw``."""
    writer = SealingWriter(sink, tenant_id)
    with open_sealed(raw, tenant_id, sealed_only=sealed_only) as plain:
        while block := plain.read(BLOCK_SIZE):
            writer.write(block)
    writer.finish()
