"""A bounded client for a Confluent-compatible registry's REST API (Confluent Schema Registry, Karapace,
Redpanda, Apicurio's `ccompat` API, or another kschema).

Every request is bounded: a connect and a total timeout, a cap on the response body, a cap on requests in
flight, and a small number of retries with backoff for what a busy server answers (timeouts, connection
resets, 408, 429 and 5xx). Authentication failures and malformed answers are never retried. Each failure
is one typed `SourceError` naming the URL and the reason, translated here once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

__all__ = [
    "MalformedResponseError",
    "SourceAuthError",
    "SourceClient",
    "SourceError",
    "SourceNotFoundError",
    "SourceSettings",
    "SourceTimeoutError",
    "SourceUnreachableError",
    "path_of",
]

CONTENT_TYPES = (
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
)
_RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """How to reach the source registry. `url` is the root of its Confluent API (for Apicurio:
    `http://host:port/apis/ccompat/v7`)."""

    url: str
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure_skip_verify: bool = False
    connect_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 30.0
    # A schema is at most 1 MiB in kschema; JSON escaping can double it, references and metadata add more.
    max_response_bytes: int = 8 * 1024 * 1024
    max_in_flight: int = 16
    retries: int = 3
    backoff_seconds: float = 0.25
    page_size: int = 1000


class SourceError(Exception):
    """The source registry could not be read. `url` is the request that failed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        self.retry_after: float | None = None  # seconds, from a 429 or 503 answer's Retry-After
        super().__init__(f"{url}: {reason}")


class SourceUnreachableError(SourceError):
    """No connection could be made (refused, no route, TLS handshake failure)."""


class SourceTimeoutError(SourceError):
    """The source did not answer within the request timeout, on every try."""


class SourceAuthError(SourceError):
    """401 or 403: the credentials are missing, wrong or not allowed to read."""


class SourceNotFoundError(SourceError):
    """404; `error_code` is Confluent's code (40401 subject, 40402 version, 40408 no subject config...)."""

    def __init__(self, url: str, reason: str, error_code: int | None) -> None:
        super().__init__(url, reason)
        self.error_code = error_code


class MalformedResponseError(SourceError):
    """An answer that is not what the Confluent API defines (not JSON, wrong shape, too large)."""


def path_of(*segments: str | int) -> str:
    """An API path with each segment percent-encoded: subject names may hold `/`, `:` or spaces."""
    return "".join("/" + quote(str(segment), safe="") for segment in segments)


def _ssl_context(settings: SourceSettings) -> ssl.SSLContext | bool:
    if not settings.url.startswith("https:"):
        return True  # aiohttp's default; unused for plain HTTP
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.client_cert:
        context.load_cert_chain(settings.client_cert, settings.client_key)
    if settings.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _headers(settings: SourceSettings) -> dict[str, str]:
    headers = {"Accept": CONTENT_TYPES, "User-Agent": "kschema-import"}
    if settings.bearer_token:
        headers["Authorization"] = f"Bearer {settings.bearer_token}"
    elif settings.username is not None:
        headers["Authorization"] = aiohttp.encode_basic_auth(settings.username, settings.password or "")
    return headers


class SourceClient:
    """`async with SourceClient(settings) as source: await source.get_json("/subjects")`."""

    def __init__(self, settings: SourceSettings) -> None:
        if not settings.url.startswith(("http://", "https://")):
            raise ValueError(f"--from must be an http:// or https:// URL, got {settings.url!r}")
        if settings.bearer_token and settings.username:
            raise ValueError("use either basic auth (a user name) or a bearer token, not both")
        self.settings = settings
        self._base = settings.url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        self.requests = 0

    async def __aenter__(self) -> SourceClient:
        settings = self.settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.max_in_flight, ssl=_ssl_context(settings)),
            timeout=aiohttp.ClientTimeout(
                total=settings.request_timeout_seconds, sock_connect=settings.connect_timeout_seconds
            ),
            headers=_headers(settings),
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, path: str, params: Mapping[str, str | int | bool] | None = None) -> str:
        query = ""
        if params:
            query = "?" + urlencode(
                {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()}
            )
        return f"{self._base}{path}{query}"

    async def get_json(self, path: str, params: Mapping[str, str | int | bool] | None = None) -> Any:
        """GETs `path` (already percent-encoded, see `path_of`) and returns the parsed JSON body."""
        if self._session is None:
            raise RuntimeError("SourceClient is used outside `async with`")
        url = self.url(path, params)
        settings = self.settings
        last: SourceError | None = None
        for attempt in range(settings.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, last))
            try:
                async with self._in_flight:
                    self.requests += 1
                    status, body, retry_after = await self._get(url)
            except SourceError as error:
                if isinstance(error, MalformedResponseError):
                    raise
                last = error
                continue
            if status == 200:
                try:
                    return json.loads(body)
                except (UnicodeDecodeError, json.JSONDecodeError) as error:
                    raise MalformedResponseError(url, f"the answer is not JSON ({error})") from None
            code, message = _confluent_error(body)
            described = f"HTTP {status}" + (f" error_code {code}" if code is not None else "")
            if message:
                described += f": {message}"
            if status in (401, 403):
                raise SourceAuthError(url, f"{described} (check --username/--password or --bearer-token)")
            if status == 404:
                raise SourceNotFoundError(url, described, code)
            if status in _RETRIED_STATUSES:
                last = SourceError(url, described)
                last.retry_after = retry_after
                continue
            raise SourceError(url, described)
        assert last is not None
        if isinstance(last, SourceTimeoutError | SourceUnreachableError):
            raise type(last)(url, f"{last.reason} (after {settings.retries + 1} tries)")
        raise SourceError(url, f"{last.reason} (after {settings.retries + 1} tries)")

    def _delay(self, attempt: int, last: SourceError | None) -> float:
        if last is not None and last.retry_after is not None:
            return min(last.retry_after, _MAX_RETRY_AFTER_SECONDS)
        return float(self.settings.backoff_seconds * 2 ** (attempt - 1))

    async def _get(self, url: str) -> tuple[int, bytes, float | None]:
        assert self._session is not None
        limit = self.settings.max_response_bytes
        try:
            async with self._session.get(URL(url, encoded=True), max_redirects=3) as response:
                length = response.content_length
                if length is not None and length > limit:
                    raise MalformedResponseError(
                        url, f"the answer is {length} bytes, more than the limit of {limit}"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise MalformedResponseError(
                            url, f"the answer is more than the limit of {limit} bytes"
                        )
                    chunks.append(chunk)
                return response.status, b"".join(chunks), _retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            raise SourceTimeoutError(
                url, f"no answer within {self.settings.request_timeout_seconds:g} s"
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise SourceUnreachableError(url, f"cannot connect: {error.os_error or error}") from None
        except aiohttp.TooManyRedirects:
            raise SourceError(url, "too many redirects") from None
        except aiohttp.ClientError as error:
            raise SourceError(url, f"the connection failed: {error}") from None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _confluent_error(body: bytes) -> tuple[int | None, str]:
    """Confluent's `{"error_code": int, "message": str}` when the body is that, else the text's start."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, Mapping):
        code = data.get("error_code")
        message = data.get("message")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            message[:500] if isinstance(message, str) else "",
        )
    return None, ""
