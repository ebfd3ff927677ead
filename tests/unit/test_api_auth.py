"""The read API's bearer-token authentication alone: who is allowed, what is cached and for how long, and
how many reviews reach the API server. The TokenReview API itself is exercised end to end in
tests/e2e/test_api_auth.py; here a recording reviewer stands in for it."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from kschema.api.auth import (
    Authenticator,
    AuthMode,
    AuthSettings,
    Identity,
    ReviewUnavailableError,
)
from kschema.api.errors import ApiError

ALICE = "system:serviceaccount:team-a:alice"
BOB = "system:serviceaccount:team-b:bob"


class Reviewer:
    """Accepts the tokens it knows, counts every review, and can be made to wait or fail."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.failing = False

    async def review(self, token: str, audience: str) -> Identity | None:
        self.calls.append(token)
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ReviewUnavailableError("the API server answered 503")
        username = self.known.get(token)
        return Identity(username) if username is not None else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _settings(**overrides: object) -> AuthSettings:
    values: dict[str, object] = {
        "mode": AuthMode.ALL,
        "allowed_namespaces": frozenset({"team-a"}),
        "cache_seconds": 30.0,
        "negative_cache_seconds": 5.0,
    }
    values.update(overrides)
    return AuthSettings(**values)  # type: ignore[arg-type]


def _jwt(exp: float) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'exp': exp, 'sub': 'x'})}.signature"


async def _status(authenticator: Authenticator, header: str | None) -> int:
    try:
        await authenticator.authenticate(header)
    except ApiError as exc:
        return exc.status
    return 200


async def test_an_allowed_service_account_passes_and_others_get_403_or_401() -> None:
    reviewer = Reviewer({"a": ALICE, "b": BOB, "u": "jane@example.com"})
    authenticator = Authenticator(_settings(), reviewer)

    assert await _status(authenticator, "Bearer a") == 200
    assert await _status(authenticator, "Bearer b") == 403
    assert await _status(authenticator, "Bearer u") == 403  # a user, not a ServiceAccount
    assert await _status(authenticator, "Bearer nonsense") == 401
    assert await _status(authenticator, None) == 401
    assert await _status(authenticator, "Basic YTpi") == 401
    assert await _status(authenticator, "Bearer ") == 401


async def test_single_service_accounts_and_the_wildcard_namespace_are_allowed() -> None:
    reviewer = Reviewer({"a": ALICE, "b": BOB})
    only_bob = Authenticator(
        _settings(allowed_namespaces=frozenset(), allowed_service_accounts=frozenset({"team-b/bob"})),
        reviewer,
    )
    everyone = Authenticator(_settings(allowed_namespaces=frozenset({"*"})), reviewer)

    assert [await _status(only_bob, "Bearer a"), await _status(only_bob, "Bearer b")] == [403, 200]
    assert [await _status(everyone, "Bearer a"), await _status(everyone, "Bearer b")] == [200, 200]


def test_authentication_that_allows_nobody_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="allows nobody"):
        AuthSettings(mode=AuthMode.CHECKS)
    with pytest.raises(ValueError, match="namespace/name"):
        AuthSettings(mode=AuthMode.CHECKS, allowed_service_accounts=frozenset({"bob"}))


async def test_an_accepted_review_is_reused_until_the_cache_period_ends() -> None:
    reviewer, clock = Reviewer({"a": ALICE}), Clock()
    authenticator = Authenticator(_settings(), reviewer, clock=clock)

    for _ in range(1000):
        assert await _status(authenticator, "Bearer a") == 200
    assert reviewer.calls == ["a"]
    clock.now += 31
    assert await _status(authenticator, "Bearer a") == 200
    assert reviewer.calls == ["a", "a"]


async def test_a_refused_token_is_remembered_for_a_shorter_time() -> None:
    reviewer, clock = Reviewer({}), Clock()
    authenticator = Authenticator(_settings(), reviewer, clock=clock)

    for _ in range(100):
        assert await _status(authenticator, "Bearer bad") == 401
    assert len(reviewer.calls) == 1
    clock.now += 6
    assert await _status(authenticator, "Bearer bad") == 401
    assert len(reviewer.calls) == 2


async def test_a_token_that_expires_sooner_is_cached_only_until_it_expires() -> None:
    token = _jwt(exp=5_000_010.0)
    reviewer, clock = Reviewer({token: ALICE}), Clock()
    authenticator = Authenticator(_settings(), reviewer, clock=clock, wall_clock=lambda: 5_000_000.0)

    assert await _status(authenticator, f"Bearer {token}") == 200
    clock.now += 9
    assert await _status(authenticator, f"Bearer {token}") == 200
    assert len(reviewer.calls) == 1
    clock.now += 2  # past the token's exp, well within the 30 s cache period
    assert await _status(authenticator, f"Bearer {token}") == 200
    assert len(reviewer.calls) == 2


async def test_concurrent_requests_with_one_new_token_share_one_review() -> None:
    reviewer = Reviewer({"a": ALICE})
    reviewer.gate = asyncio.Event()
    authenticator = Authenticator(_settings(), reviewer)

    waiting = [asyncio.create_task(_status(authenticator, "Bearer a")) for _ in range(200)]
    await asyncio.sleep(0)
    reviewer.gate.set()

    assert await asyncio.gather(*waiting) == [200] * 200
    assert reviewer.calls == ["a"]


async def test_reviews_in_flight_are_bounded_whatever_the_number_of_random_tokens() -> None:
    reviewer = Reviewer({})
    reviewer.gate = asyncio.Event()
    authenticator = Authenticator(_settings(concurrent_reviews=3), reviewer)

    waiting = [asyncio.create_task(_status(authenticator, f"Bearer random-{i}")) for i in range(50)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(reviewer.calls) == 3
    reviewer.gate.set()
    assert set(await asyncio.gather(*waiting)) == {401}


async def test_the_cache_holds_at_most_its_configured_number_of_tokens() -> None:
    reviewer = Reviewer({f"t{i}": ALICE for i in range(10)})
    authenticator = Authenticator(_settings(cache_entries=4), reviewer)

    for i in range(10):
        await _status(authenticator, f"Bearer t{i}")
    for i in range(6, 10):  # the four most recent are still cached
        await _status(authenticator, f"Bearer t{i}")
    assert len(reviewer.calls) == 10
    await _status(authenticator, "Bearer t0")  # evicted long ago
    assert len(reviewer.calls) == 11


async def test_an_unavailable_api_server_is_not_cached_as_a_refusal() -> None:
    reviewer = Reviewer({"a": ALICE})
    reviewer.failing = True
    authenticator = Authenticator(_settings(), reviewer)

    with pytest.raises(ReviewUnavailableError):
        await authenticator.authenticate("Bearer a")
    reviewer.failing = False
    assert await _status(authenticator, "Bearer a") == 200
    assert len(reviewer.calls) == 2


async def test_a_review_that_hangs_is_given_up_after_its_timeout() -> None:
    reviewer = Reviewer({"a": ALICE})
    reviewer.gate = asyncio.Event()  # never set
    authenticator = Authenticator(_settings(review_timeout_seconds=0.05), reviewer)

    with pytest.raises(ReviewUnavailableError, match="in time"):
        await authenticator.authenticate("Bearer a")
