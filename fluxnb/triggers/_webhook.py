"""Webhook signatures: ``X-Fluxnb-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The secret is read from the environment variable the trigger names (``secret_env``) when a
delivery arrives; it is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

SIGNATURE_HEADER = "X-Fluxnb-Signature"
DELIVERY_HEADER = "X-Fluxnb-Delivery"
#: What a delivery id may be: it becomes part of a stored key, so short and plain (GitHub's
#: UUIDs, Stripe's ``evt_...`` ids and the like fit).
DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/~-]{0,199}")
#: The one answer to any refused signature: it must not tell a caller whether the secret
#: is set on the server (the recorded reason says which it was).
REFUSED = f"{SIGNATURE_HEADER} is missing or does not match the body"


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``X-Fluxnb-Signature`` value for ``body`` (what a sender computes).

    >>> sign(b'{"a": 1}', "s3cret")[:7]
    'sha256='
    """
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, header: str | None, secret_env: str) -> str | None:
    """Why the delivery is refused (None: the signature is right), for the record; a
    caller is only told :data:`REFUSED`. Compared in constant time, and the same work is
    done when the secret is missing, which refuses everything rather than accepting
    anything."""
    secret = os.environ.get(secret_env)
    expected = sign(body, secret or os.urandom(32))
    if not hmac.compare_digest((header or "").strip().encode(), expected.encode()) or not secret:
        if not secret:
            return f"the webhook's secret is not set: environment variable {secret_env} is empty"
        if not header:
            return f"no {SIGNATURE_HEADER} header"
        return f"{SIGNATURE_HEADER} does not match the body (HMAC-SHA256 with the shared secret)"
    return None


def delivery_problem(delivery: str | None) -> str | None:
    """Why an ``X-Fluxnb-Delivery`` value cannot be a key (None: it can, or it is missing)."""
    if not delivery or DELIVERY_ID.fullmatch(delivery):
        return None
    return (
        f"{DELIVERY_HEADER} must be 1-200 letters, digits or ._:@+=/~- (starting with a "
        f"letter or digit); this one has {len(delivery)} characters"
    )
