"""The Standard Webhooks signature (standardwebhooks.com): what a receiver checks with that convention's libraries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # a generated secret's key: 256 bits, as HMAC-SHA256's block wants at least


def new_secret() -> str:
    """A fresh secret in the convention's form: whsec_ + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key of a secret: the base64 after whsec_ decoded; ValueError when it is not that."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header: v1, + base64 of HMAC-SHA256 over `id.timestamp.body`."""
    digest = hmac.new(key_of(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three headers of a delivery (the same id on every retry; the timestamp and signature of this one)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
