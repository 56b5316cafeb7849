"""Who may call what: the access each method needs and the access each bearer token gives.

Transport-free (the gRPC interceptor in `auth` applies it), so the rules
can be read and tested in one place. Levels are ordered: a token gives its
own level and every lower one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum

from entrel.config import AuthSettings
from entrel.errors import EntrelError
from entrel.service.tokens import read_token

__all__ = [
    "ADMIN_SERVICE",
    "READ_ONLY_ADMIN_METHODS",
    "SCORING_SERVICE",
    "Access",
    "AccessPolicy",
    "PermissionDenied",
    "Tokens",
    "Unauthenticated",
]

ADMIN_SERVICE = "entrel.v1.Admin"
SCORING_SERVICE = "entrel.v1.Relevance"
# Admin methods that change nothing. Every other Admin method, also one added
# later and forgotten here, needs the admin token: the safe default.
READ_ONLY_ADMIN_METHODS = frozenset({"GetStatus", "ListOverrides"})


class Unauthenticated(EntrelError, PermissionError):
    """No bearer token, a malformed one, or one the server does not know."""


class PermissionDenied(EntrelError, PermissionError):
    """A valid token whose level is below what the method needs."""


class Access(IntEnum):
    OPEN = 0
    SCORE = 1
    READ = 2
    ADMIN = 3


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps even the token's length out of the timing.
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class Tokens:
    """SHA-256 digests of the configured tokens, by the level each grants (None: not configured)."""

    admin: bytes | None = None
    read: bytes | None = None
    score: bytes | None = None

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> Tokens:
        """Read every configured token now (a missing file or variable is a ConfigError)."""
        found = {
            who: read_token(getattr(auth, f"{who}_token_file"), getattr(auth, f"{who}_token_env"), f"auth.{who}_token")
            for who in ("admin", "read", "score")
        }
        return cls(**{who: _digest(token) if token else None for who, token in found.items()})

    @classmethod
    def of(cls, admin: str | None = None, read: str | None = None, score: str | None = None) -> Tokens:
        """From plain tokens (for embedding and tests)."""
        return cls(*(_digest(t) if t else None for t in (admin, read, score)))


class AccessPolicy:
    """Decides a call from its method name and its authorization metadata."""

    def __init__(self, tokens: Tokens) -> None:
        self._levels = [
            (level, d)
            for level, d in ((Access.ADMIN, tokens.admin), (Access.READ, tokens.read), (Access.SCORE, tokens.score))
            if d
        ]
        self._scoring_open = tokens.score is None

    def required(self, method: str) -> Access:
        """The level `method` ("/package.Service/Method") needs. Health and reflection stay open for probes."""
        service, _, name = method.strip("/").partition("/")
        if service == ADMIN_SERVICE:
            return Access.READ if name in READ_ONLY_ADMIN_METHODS else Access.ADMIN
        if service == SCORING_SERVICE and not self._scoring_open:
            return Access.SCORE
        return Access.OPEN

    def granted(self, token: str) -> Access:
        """The highest level `token` gives; every configured token is compared, in constant time each."""
        presented = _digest(token)
        best = Access.OPEN
        for level, digest in self._levels:
            if hmac.compare_digest(presented, digest):
                best = max(best, level)
        return best

    def check(self, method: str, authorization: str | None) -> None:
        """Return when the call may proceed; raise Unauthenticated or PermissionDenied otherwise."""
        needed = self.required(method)
        if needed is Access.OPEN:
            return
        if not any(level >= needed for level, _ in self._levels):
            setting = "auth.admin_token" if needed is Access.ADMIN else "auth.admin_token or auth.read_token"
            raise Unauthenticated(f"no token is configured for this call: set {setting}_file or _env on the server")
        level = self.granted(_bearer(authorization))
        if level is Access.OPEN:
            raise Unauthenticated("invalid bearer token")
        if level < needed:
            raise PermissionDenied(f"this token is {level.name.lower()}-only; the call needs the {needed.name.lower()} token")

    def principal(self, authorization: str | None) -> str:
        """Who made a call, for audit logs: the role of its token ("admin", "read", "score"), or "anonymous"."""
        try:
            level = self.granted(_bearer(authorization))
        except Unauthenticated:
            level = Access.OPEN
        return "anonymous" if level is Access.OPEN else level.name.lower()


def _bearer(authorization: str | None) -> str:
    """The token of "Bearer <token>" metadata; Unauthenticated when missing or malformed."""
    if authorization is None:
        raise Unauthenticated("missing bearer token (metadata 'authorization: Bearer <token>')")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
    return token.strip()
