"""Encryption at rest of API-key secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The server must recompute each request's HMAC, so it needs the secret itself: a one-way hash
would not do. The secret is therefore stored encrypted with a key from the settings
(``API_KEY_ENCRYPTION_KEY``), never in plain text. Several keys may be configured: the first
encrypts, every one decrypts (``MultiFernet``), so the key can be rotated.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_HKDF_INFO = b"exchange api-key secrets v1"


def _fernet_key(material: str) -> bytes:
    """A Fernet key from any configured string (a Fernet key is used as it is)."""
    try:
        if len(base64.urlsafe_b64decode(material.encode())) == 32 and len(material) == 44:
            return material.encode()
    except ValueError:
        pass
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        material.encode()
    )
    return base64.urlsafe_b64encode(derived)


@functools.cache
def _cipher() -> MultiFernet:
    keys = settings.API_KEY_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = [keys]
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys if key])


@receiver(setting_changed)
def _forget_cipher(*, setting, **kwargs):
    if setting in ("API_KEY_ENCRYPTION_KEY", "SECRET_KEY"):
        _cipher.cache_clear()


def secret_encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str | None:
    """The secret, or None when no configured key can decrypt it (a key was rotated out)."""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        return None
