"""Optional bearer-token authentication of the read API, checked by the Kubernetes TokenReview API.

A client sends `Authorization: Bearer <token>`, typically a pod's projected ServiceAccount token minted
for the configured audience (Confluent's clients do so with `bearer.auth.credentials.source:
STATIC_TOKEN`). The API server says whose token it is; an allow-list of namespaces and ServiceAccounts
says whether that identity may call the endpoint. No token or a token the API server does not accept is
401, an identity outside the allow-list is 403, both in Confluent's error shape.

Reviews are cached by a digest of the token, in a bounded LRU, for a short time (shorter when the token
expires sooner), so a client sending thousands of requests a second costs the API server one review
per token and cache period. Concurrent requests with the same new token share one review, and at most
a few reviews run at once, so a flood of random tokens cannot multiply into a flood on the API server."""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from kschema.api.errors import ApiError, error_response

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
# Health and metrics stay open in every mode: kubelet probes and Prometheus carry no token.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AuthMode(enum.StrEnum):
    OFF = "off"
    """No authentication (the default): every endpoint is open, as before."""
    CHECKS = "checks"
    """The compatibility and data-validation endpoints (CPU-heavy, fed arbitrary input) need a token;
    reads stay open for serializers that carry none."""
    ALL = "all"
    """Every endpoint but health and metrics needs a token."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    mode: AuthMode = AuthMode.OFF
    audience: str = "kschema"
    """The audience a token must be minted for (`kubectl create token --audience`, a projected volume's
    `audience`); a token for the API server itself or another service is refused."""
    allowed_namespaces: frozenset[str] = frozenset()
    """Every ServiceAccount of these namespaces may call; `*` allows every namespace."""
    allowed_service_accounts: frozenset[str] = frozenset()
    """`namespace/name` of single ServiceAccounts that may call."""
    cache_seconds: float = 30.0
    """How long an accepted review is reused (never past the token's own expiry)."""
    negative_cache_seconds: float = 5.0
    """How long a refused token is remembered, so a client retrying a bad token costs no reviews."""
    cache_entries: int = 10_000
    concurrent_reviews: int = 8
    review_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.mode is not AuthMode.OFF:
            if not self.audience:
                raise ValueError("the token audience must not be empty when authentication is on")
            if not self.allowed_namespaces and not self.allowed_service_accounts:
                raise ValueError(
                    "authentication is on but allows nobody: name namespaces (or *) or ServiceAccounts"
                )
        for entry in self.allowed_service_accounts:
            namespace, _, name = entry.partition("/")
            if not namespace or not name or "/" in name:
                raise ValueError(f"allowed ServiceAccount {entry!r} must be namespace/name")
        if self.cache_seconds < 0 or self.negative_cache_seconds < 0:
            raise ValueError("cache periods must not be negative")
        if self.cache_entries < 1 or self.concurrent_reviews < 1:
            raise ValueError("cache_entries and concurrent_reviews must be at least 1")
        if self.review_timeout_seconds <= 0:
            raise ValueError("review_timeout_seconds must be positive")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the API server says a token belongs to."""

    username: str

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) for a ServiceAccount's token, None for any other user."""
        if not self.username.startswith(SERVICE_ACCOUNT_PREFIX):
            return None
        namespace, _, name = self.username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        return (namespace, name) if namespace and name else None


class ReviewUnavailableError(Exception):
    """The TokenReview API could not be asked (API server down, timeout, missing permission)."""


class TokenReviewer(Protocol):
    async def review(self, token: str, audience: str) -> Identity | None:
        """The token's identity, or None when the API server does not accept it for `audience`.
        Raises `ReviewUnavailableError` when there is no answer."""
        ...


def unauthorized(reason: str) -> ApiError:
    return ApiError(401, 40101, f"Unauthorized: {reason}")


def forbidden(who: str) -> ApiError:
    return ApiError(403, 40301, f"Forbidden: {who} is not allowed to use this registry")


class Authenticator:
    """Turns an Authorization header into an allowed identity or a 401/403 `ApiError`."""

    def __init__(
        self,
        settings: AuthSettings,
        reviewer: TokenReviewer,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._reviewer = reviewer
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: OrderedDict[bytes, tuple[float, Identity | None]] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Task[Identity | None]] = {}
        self._reviews = asyncio.Semaphore(settings.concurrent_reviews)

    async def authenticate(self, authorization: str | None) -> Identity:
        token = _bearer_token(authorization)
        identity = await self._identity(token)
        if identity is None:
            raise unauthorized("the token was not accepted by the Kubernetes API server for this audience")
        if not self._allowed(identity):
            raise forbidden(identity.username)
        return identity

    def _allowed(self, identity: Identity) -> bool:
        account = identity.service_account
        if account is None:
            return False
        namespace, name = account
        allowed = self._settings
        return (
            "*" in allowed.allowed_namespaces
            or namespace in allowed.allowed_namespaces
            or f"{namespace}/{name}" in allowed.allowed_service_accounts
        )

    async def _identity(self, token: str) -> Identity | None:
        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            expires, identity = cached
            if self._clock() < expires:
                self._cache.move_to_end(key)
                return identity
            del self._cache[key]
        # One review per new token however many requests carry it at once. The review runs as a task of
        # its own, so a client hanging up does not cancel it for the others.
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._review_and_remember(key, token), name="kschema-token-review")
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: bytes, task: asyncio.Task[Identity | None]) -> None:
        del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter has gone

    async def _review_and_remember(self, key: bytes, token: str) -> Identity | None:
        identity = await self._review(token)
        self._remember(key, token, identity)
        return identity

    async def _review(self, token: str) -> Identity | None:
        async with self._reviews:
            try:
                async with asyncio.timeout(self._settings.review_timeout_seconds):
                    return await self._reviewer.review(token, self._settings.audience)
            except TimeoutError:
                raise ReviewUnavailableError("the TokenReview did not answer in time") from None

    def _remember(self, key: bytes, token: str, identity: Identity | None) -> None:
        period = (
            self._settings.cache_seconds if identity is not None else self._settings.negative_cache_seconds
        )
        expiry = _token_expiry(token)
        if expiry is not None:
            period = min(period, expiry - self._wall_clock())
        if period <= 0:
            return
        self._cache[key] = (self._clock() + period, identity)
        self._cache.move_to_end(key)
        while len(self._cache) > self._settings.cache_entries:
            self._cache.popitem(last=False)


def _bearer_token(authorization: str | None) -> str:
    if authorization is None:
        raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    return token


def _token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying it: only ever used to cache an accepted review
    for less time, never to accept anything."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def route_is_protected(mode: AuthMode, template: str) -> bool:
    """Whether requests to a route template need a token in `mode` (decided once per route)."""
    if mode is AuthMode.OFF or template in OPEN_PATHS:
        return False
    if mode is AuthMode.ALL:
        return True
    return template.startswith("/compatibility/") or "validate" in template.split("/")


def unmatched_is_protected(mode: AuthMode, request: web.Request) -> bool:
    """Whether a request no route matched needs a token (401 before 404): only in mode `all`."""
    return mode is AuthMode.ALL and request.path not in OPEN_PATHS


async def refusal(checker: Authenticator, request: web.Request) -> web.Response | None:
    """The 401, 403 or 503 answer for a request whose token is missing, refused or cannot be reviewed;
    None when the caller may go on."""
    try:
        await checker.authenticate(request.headers.get("Authorization"))
    except ReviewUnavailableError as exc:
        log.warning("Failed to review a bearer token reason=%s", exc)
        return error_response(503, 50301, "Authentication is unavailable: the token review failed")
    except ApiError as exc:
        response = error_response(exc.status, exc.error_code, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="kschema"'
        return response
    return None
