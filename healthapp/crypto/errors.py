class CryptoError(Exception):
    """Base of every encryption failure. Messages never contain plaintext or key material."""


class DecryptionError(CryptoError):
    """The value cannot be decrypted: wrong key, moved ciphertext (AAD mismatch) or tampering."""


class KeyDestroyedError(DecryptionError):
    """The tenant's data keys were destroyed (crypto-shredding): the value is gone for good."""


class KeyUnavailableError(CryptoError):
    """No usable key: the master key is missing or a data key version is unknown."""
