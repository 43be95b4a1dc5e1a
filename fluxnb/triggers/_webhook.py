"""Webhook signatures: ``X-Fluxnb-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The secret is read from the environment variable the trigger names (``secret_env``) when a
delivery arrives; it is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SIGNATURE_HEADER = "X-Fluxnb-Signature"
DELIVERY_HEADER = "X-Fluxnb-Delivery"


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``X-Fluxnb-Signature`` value for ``body`` (what a sender computes).

    >>> sign(b'{"a": 1}', "s3cret")[:7]
    'sha256='
    """
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, header: str | None, secret_env: str) -> str | None:
    """Why the delivery is refused (None: the signature is right). Compared in constant
    time; a missing secret refuses everything rather than accepting anything."""
    secret = os.environ.get(secret_env)
    if not secret:
        return f"the webhook's secret is not set: environment variable {secret_env} is empty"
    if not header:
        return f"no {SIGNATURE_HEADER} header"
    if not hmac.compare_digest(header.strip().encode(), sign(body, secret).encode()):
        return f"{SIGNATURE_HEADER} does not match the body (HMAC-SHA256 with the shared secret)"
    return None
