"""Contact details at rest: encrypted (Fernet, with rotation), compared by keyed hash.

A signature reveals a political opinion, and a phone number ties it to a person: a copied
database file must not show either in clear. Tokens are made when the person types the
contact and read back only to show it to them (or to an admin who asks for contacts).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class ContactCipher:
    """Encrypts with the first of the keys, decrypts with any of them."""

    def __init__(self, keys: list[str], hash_key: str) -> None:
        """`keys`: Fernet keys, newest first; `hash_key`: a separate secret for comparisons."""
        if not keys:
            raise ValueError("at least one key is needed")
        fernets = [Fernet(key.encode()) for key in keys]
        self._newest = fernets[0]
        self._fernet = MultiFernet(fernets)
        self._hash_key = hash_key.encode()

    def seal(self, value: str) -> str:
        """An opaque token for a contact detail."""
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, token: str) -> str | None:
        """The contact detail in a token, or None if no key of ours made it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None

    def rotate(self, token: str) -> str:
        """The same detail, sealed again with the newest key."""
        return self._fernet.rotate(token.encode()).decode()

    def reseal(self, token: str) -> str | None:
        """The token sealed with the newest key: the same token when it already is (sealing
        again would change it for nothing), None when no key of ours opens it."""
        with contextlib.suppress(InvalidToken, ValueError):
            self._newest.decrypt(token.encode())
            return token
        try:
            return self.rotate(token)
        except (InvalidToken, ValueError):
            return None

    def fingerprint(self, value: str) -> str:
        """A keyed hash of a normalised contact, to find duplicates without reading them.

        Keyed (HMAC), never a plain hash: phone numbers are few enough to be guessed."""
        return hmac.new(self._hash_key, value.strip().lower().encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    """A fresh random key, for DATA_KEY or HASH_KEY."""
    return Fernet.generate_key().decode()
