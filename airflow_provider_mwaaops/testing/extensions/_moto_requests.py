"""Reading requests the way our rules need, on moto 5.2.6 and later.

moto 5.2.6 parses JSON requests through the service's botocore model (``params``,
members coerced to the model's types, members unknown to an older botocore dropped: MWAA 2.11.0
pins botocore 1.37.3). A rule that must see a member exactly as sent reads it with
:func:`request_member`.
"""

from __future__ import annotations

import json
from typing import Any


def request_member(response: Any, name: str) -> Any:
    """A top-level member of a JSON request exactly as the client sent it (None when absent)."""
    body = response.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return None
    return decoded.get(name) if isinstance(decoded, dict) else None
