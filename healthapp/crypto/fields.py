"""Encrypted model fields: text, date and JSON.

The column holds the sealed value (healthapp.crypto.primitives). The attribute on a loaded instance
is decrypted lazily on first access, with AAD = tenant id | model | field | row uid, so a ciphertext
copied to another field, row or tenant does not decrypt. Serialisation (dumpdata, model_to_dict)
sees the ciphertext as base64, never the plaintext. Filtering on these columns is refused: use the
blind indexes (healthapp.crypto.blind_index).

A field added to an existing table must be ``null=True`` without a default: every row needs a
ciphertext of its own, which a migration's single default value cannot provide.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from os import urandom
from typing import Any

from cryptography.exceptions import InvalidTag
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils.functional import cached_property

from healthapp.crypto import keyring
from healthapp.crypto.errors import DecryptionError
from healthapp.crypto.primitives import FORMAT_V1, HEADER_SIZE, NONCE_SIZE, VERSION_HEADER_SIZE, key_version_of


class Sealed(bytes):
    """Ciphertext as loaded from the database; prints as a placeholder, never as data."""

    def __repr__(self) -> str:
        return "<encrypted>"

    __str__ = __repr__


class Verbatim(Sealed):
    """Ciphertext restored from a dump (loaddata): written back as is, never decrypted through the
    instance that carries it, so a restore needs no key (and works for a shredded tenant too)."""


class PlainText(str):
    """A decrypted string that remembers the ciphertext it came from: saving it unchanged (also a raw
    save, as loaddata does) into the row and field it came from writes that ciphertext back instead of
    encrypting again. Copied into another row or field, it is sealed anew (that ciphertext would not
    open there: the row and field are in its associated data)."""

    sealed: bytes
    sealed_in: tuple[int, bytes, bytes]  # tenant id, row uid, field AAD part


class PlainDate(dt.date):
    """A decrypted date that remembers its ciphertext (see PlainText)."""

    sealed: bytes
    sealed_in: tuple[int, bytes, bytes]


def _remember(value: Any, sealed: bytes, field: EncryptedMixin, tenant_id: int, uid: bytes) -> Any:
    if isinstance(value, str):
        value = PlainText(value)
    elif isinstance(value, dt.date):
        value = PlainDate(value.year, value.month, value.day)
    else:
        return value  # JSON values are mutable: they are re-encrypted on every save
    value.sealed = sealed
    value.sealed_in = (tenant_id, uid, field._aad_suffix)
    return value


def _sealed_here(value: Any, field: EncryptedMixin, tenant_id: int, uid: bytes) -> bool:
    """Whether ``value`` is a remembered plaintext opened from this very row and field."""
    return isinstance(value, PlainText | PlainDate) and value.sealed_in == (tenant_id, uid, field._aad_suffix)


def fresh(value: Any) -> Any:
    """The same value without its remembered ciphertext, so the next save seals it anew."""
    if isinstance(value, PlainText):
        return str(value)
    if isinstance(value, PlainDate):
        return dt.date(value.year, value.month, value.day)
    return value


def _aad_parts(field: EncryptedMixin) -> bytes:
    """The field's constant AAD part ``|app.model|field|``; notes whether the model has a row uid."""
    suffix = field.__dict__.get("_aad_suffix")
    if suffix is None:
        suffix = field._aad_suffix = f"|{field.model._meta.label_lower}|{field.name}|".encode()
        field._aad_has_uid = any(f.attname == "uid" for f in field.model._meta.concrete_fields)
    return suffix


class EncryptedAttribute(DeferredAttribute):
    """A data descriptor (unlike Django's DeferredAttribute), so every read passes through it and a
    freshly loaded ciphertext is decrypted on first access."""

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed) and not isinstance(value, Verbatim):
            field = self.field
            _aad_parts(field)  # a field outside its model's concrete fields is prepared here
            row = _row_aad(instance)  # once: it opens the value and is remembered with it
            value = _remember(open_row(*row, [(field, value)])[0], bytes(value), field, *row)
            instance.__dict__[field.attname] = value
        return value


class EncryptedMixin:
    descriptor_class = EncryptedAttribute
    empty_strings_allowed = False
    plain_is_text = False  # the plaintext is UTF-8 text as is (lets the row path skip a method call)

    # --- conversions implemented by the concrete fields --------------------------------------------
    def encode_plain(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode_plain(self, raw: bytes) -> Any:
        raise NotImplementedError

    # --- encryption: one value is a row of one (seal_row / open_row below) --------------------------
    def encrypt_for(self, instance: models.Model, value: Any) -> bytes:
        """Seal under a fresh random 96-bit nonce: header | nonce | ciphertext+tag, header in the AAD."""
        _aad_parts(self)  # a field outside its model's concrete fields is prepared here
        return seal_row(*_row_aad(instance), [(self, value)])[0]

    def decrypt_for(self, instance: models.Model, sealed: bytes) -> Any:
        """Open a sealed value; raises DecryptionError, never returns anything but the plaintext."""
        _aad_parts(self)
        return open_row(*_row_aad(instance), [(self, sealed)])[0]

    # --- Django field protocol -------------------------------------------------------------------
    def get_internal_type(self) -> str:
        return "BinaryField"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return "" if self.empty_as_null else None
        return Sealed(bytes(value))

    def to_python(self, value):
        # Accepts the base64 form that value_to_string writes, so loaddata restores ciphertext as is.
        if isinstance(value, str) and value.startswith("sealed:"):
            return Verbatim(base64.b64decode(value[7:]))
        return value

    @cached_property
    def empty_as_null(self) -> bool:
        """A nullable field whose default is "" stores "" as NULL: a sealed empty string would reveal
        its emptiness by its length anyway, and costs an encryption and ~45 bytes per row."""
        return self.null and self.has_default() and self.default == ""

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value  # untouched since loading: keep the stored ciphertext (and its key version)
        if value == "" and self.empty_as_null:
            return None
        if isinstance(value, PlainText | PlainDate) and _sealed_here(value, self, *_row_aad(model_instance)):
            return value.sealed  # read but not changed
        if isinstance(value, str | dt.date):
            # The first new value of a save seals every new value of the row in one pass.
            seal_instance(model_instance)
            return model_instance.__dict__[self.attname].sealed
        return self.encrypt_for(model_instance, value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if isinstance(value, PlainText | PlainDate):
            value = value.sealed
        if not isinstance(value, bytes):
            raise DecryptionError(f"{self.name}: refusing to write a plaintext value to an encrypted column")
        return connection.Database.Binary(bytes(value))

    def value_from_object(self, obj):
        raw = obj.__dict__.get(self.attname)
        if raw is None:
            return None
        if isinstance(raw, PlainText | PlainDate) and _sealed_here(raw, self, *_row_aad(obj)):
            raw = raw.sealed
        elif not isinstance(raw, Sealed):
            raw = self.encrypt_for(obj, fresh(raw))
        return "sealed:" + base64.b64encode(raw).decode()

    def value_to_string(self, obj) -> str:
        return self.value_from_object(obj)

    def get_lookup(self, lookup_name: str):
        if lookup_name != "isnull":
            return None  # FieldError: encrypted columns are searched through blind indexes
        return super().get_lookup(lookup_name)

    def formfield(self, **kwargs):
        return None  # never edited through generic model forms; pages and the API use explicit fields


class EncryptedTextField(EncryptedMixin, models.Field):
    plain_is_text = True

    def encode_plain(self, value: Any) -> bytes:
        return str(value).encode("utf-8")

    def decode_plain(self, raw: bytes) -> str:
        return raw.decode("utf-8")


class EncryptedDateField(EncryptedMixin, models.Field):
    def encode_plain(self, value: Any) -> bytes:
        if value.__class__ is dt.date:  # what imports and forms give: no checks to run
            return value.isoformat().encode()
        if isinstance(value, str):
            value = dt.date.fromisoformat(value)
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError(f"{self.name} expects a date")
        return value.isoformat().encode()

    def decode_plain(self, raw: bytes) -> dt.date:
        return dt.date.fromisoformat(raw.decode())


class EncryptedJSONField(EncryptedMixin, models.Field):
    def encode_plain(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    def decode_plain(self, raw: bytes) -> Any:
        return json.loads(raw)


# --- Whole rows ----------------------------------------------------------------------------------------
# A save, an import or a re-encryption handles every personal value of a row at once: one key lookup,
# one AAD prefix and one read of random bytes per row instead of per value.

_ENCRYPTED_FIELDS: dict[type, tuple[EncryptedMixin, ...]] = {}


def encrypted_fields(model: type[models.Model]) -> tuple[EncryptedMixin, ...]:
    found = _ENCRYPTED_FIELDS.get(model)
    if found is None:
        found = _ENCRYPTED_FIELDS[model] = tuple(
            f for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)
        )
        for f in found:
            _aad_parts(f)
    return found


def _row_aad(instance: models.Model) -> tuple[int, bytes]:
    """The row's tenant id and the AAD tail after the field name (its uid, on models that have one)."""
    state = instance.__dict__
    tenant_id = state.get("tenant_id")
    if tenant_id is None:
        raise DecryptionError(f"{type(instance).__name__} needs a tenant to encrypt or decrypt")
    fields = encrypted_fields(type(instance))  # also prepares each field's constant AAD part
    if "uid" in state:
        uid = state["uid"]
    elif not any(f._aad_has_uid for f in fields):
        return tenant_id, b""
    else:
        uid = instance.uid  # deferred: loads it
    if uid is None:
        raise DecryptionError(f"{type(instance).__name__} needs its uid to encrypt or decrypt")
    return tenant_id, uid.bytes


def seal_row(tenant_id: int, uid: bytes, items: Sequence[tuple[EncryptedMixin, Any]]) -> list[bytes]:
    """Seal the values of one row (``uid``: the row uid's bytes, ``b""`` on models without one) under
    the tenant's active data key: same format, AAD and fresh 96-bit nonce per value as ``encrypt_for``.
    Written flat, like the single-value path: it runs for every personal value an import or save writes."""
    aead, header = keyring.active_cipher(tenant_id)
    encrypt = aead.encrypt
    prefix = header + b"%d" % tenant_id
    nonces = urandom(NONCE_SIZE * len(items))
    sealed = []
    at = 0
    for f, value in items:
        nonce = nonces[at : at + NONCE_SIZE]
        at += NONCE_SIZE
        plain = value.encode() if value.__class__ is str else f.encode_plain(value)
        sealed.append(header + nonce + encrypt(nonce, plain, prefix + f._aad_suffix + uid))
    return sealed


def open_row(tenant_id: int, uid: bytes, items: Sequence[tuple[EncryptedMixin, bytes]]) -> list[Any]:
    """Open the sealed values of one row (``uid`` as for ``seal_row``); raises DecryptionError like
    ``decrypt_for``, never returns anything but the plaintext."""
    tenant = b"%d" % tenant_id
    last_header = head = decrypt = None
    plain = []
    for f, sealed in items:
        if len(sealed) < HEADER_SIZE + 16 or sealed[0] != FORMAT_V1:
            key_version_of(sealed)  # raises with the precise reason
        header = sealed[:VERSION_HEADER_SIZE]
        if header != last_header:  # one key version per row, except during a rotation
            decrypt = keyring.aead_for(tenant_id, int.from_bytes(header[1:], "big")).decrypt
            last_header, head = header, header + tenant
        try:
            raw = decrypt(sealed[VERSION_HEADER_SIZE:HEADER_SIZE], sealed[HEADER_SIZE:], head + f._aad_suffix + uid)
        except InvalidTag:
            raise DecryptionError("value does not authenticate (wrong key, moved or altered ciphertext)") from None
        plain.append(raw.decode() if f.plain_is_text else f.decode_plain(raw))
    return plain


def seal_instance(instance: models.Model) -> None:
    """Seal every new text and date value of ``instance`` in one pass; each becomes a remembered
    plaintext, so the save writes its ciphertext without sealing again. A plaintext remembered from
    another row or field counts as new."""
    state = instance.__dict__
    fields = encrypted_fields(type(instance))
    if not any(isinstance(state.get(f.attname), str | dt.date) for f in fields):
        return
    tenant_id, uid = _row_aad(instance)
    todo = [
        (f, fresh(v))
        for f in fields
        if (v := state.get(f.attname)) is not None
        and isinstance(v, str | dt.date)
        and not _sealed_here(v, f, tenant_id, uid)
        and not (v == "" and f.empty_as_null)
    ]
    if todo:
        for (f, value), sealed in zip(todo, seal_row(tenant_id, uid, todo), strict=True):
            state[f.attname] = _remember(value, sealed, f, tenant_id, uid)


def open_instance(instance: models.Model) -> None:
    """Decrypt every loaded ciphertext of ``instance`` at once (for readers of whole rows: the roster
    import's comparison, exports); single attributes still decrypt lazily on first access."""
    state = instance.__dict__
    todo = [
        (f, v)
        for f in encrypted_fields(type(instance))
        if isinstance(v := state.get(f.attname), Sealed) and not isinstance(v, Verbatim)
    ]
    if todo:
        tenant_id, uid = _row_aad(instance)
        for (f, sealed), value in zip(todo, open_row(tenant_id, uid, todo), strict=True):
            state[f.attname] = _remember(value, bytes(sealed), f, tenant_id, uid)
