"""Start-up configuration of `kschema run|operator|webhook|api`: flags, with environment variables as
defaults, validated once into the components' typed settings. Errors name the flag and its variable."""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kschema.api.auth import AuthMode, AuthSettings
from kschema.api.settings import ApiSettings
from kschema.compat import CompatibilityLevel
from kschema.operator.settings import DEFAULT_INLINE_RECONCILES, OperatorSettings
from kschema.store.base import StoreError
from kschema.store.factory import store_from_url
from kschema.webhook.settings import WebhookSettings

COMPONENTS = ("operator", "webhook", "api")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# uvloop (kopf's own `uvloop` extra; kopf's CLI runs on it whenever it is installed) or the standard
# library's loop, kept as the fall-back should a libuv-specific problem ever show up.
DEFAULT_EVENT_LOOP = "uvloop"
EVENT_LOOPS = (DEFAULT_EVENT_LOOP, "asyncio")


class ConfigError(ValueError):
    """A flag or environment variable with an unusable value."""


@dataclass(frozen=True, slots=True)
class Option:
    flag: str
    env: str
    default: str | None
    help: str


# One table: every option's flag, variable, default and meaning, so the CLI help, the chart and the
# README cannot disagree about them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "--store-url",
        "KSCHEMA_STORE_URL",
        "sqlite:///kschema.db",
        "registry store: sqlite:///relative.db, sqlite:////absolute.db or postgresql://user@host/db",
    ),
    Option(
        "--kubeconfig",
        "KUBECONFIG",
        None,
        "kubeconfig file; default: the in-cluster service account, then ~/.kube/config",
    ),
    Option(
        "--namespaces",
        "KSCHEMA_NAMESPACES",
        "",
        "comma-separated namespaces to serve; empty serves the whole cluster",
    ),
    Option("--log-level", "KSCHEMA_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Option(
        "--event-loop",
        "KSCHEMA_EVENT_LOOP",
        DEFAULT_EVENT_LOOP,
        "the process's asyncio event loop: uvloop (libuv, less CPU per event and request) or asyncio "
        "(the standard library's)",
    ),
    Option(
        "--default-compatibility",
        "KSCHEMA_DEFAULT_COMPATIBILITY",
        "BACKWARD",
        "compatibility level of Subjects without spec.compatibility, and of GET /config",
    ),
    Option("--api-host", "KSCHEMA_API_HOST", "0.0.0.0", "read API listen address"),
    Option("--api-port", "KSCHEMA_API_PORT", "8081", "read API port (HTTP)"),
    Option("--webhook-host", "KSCHEMA_WEBHOOK_HOST", "0.0.0.0", "admission webhook listen address"),
    Option("--webhook-port", "KSCHEMA_WEBHOOK_PORT", "9443", "admission webhook port (HTTPS)"),
    Option(
        "--webhook-cert-dir",
        "KSCHEMA_WEBHOOK_CERT_DIR",
        "/etc/kschema/webhook-tls",
        "folder with tls.crt and tls.key for the webhook (re-read when they change)",
    ),
    Option(
        "--health-port", "KSCHEMA_HEALTH_PORT", "8080", "operator liveness port (/healthz); 0 disables it"
    ),
    Option(
        "--peering",
        "KSCHEMA_PEERING",
        "kschema",
        "kopf peering name for leader election; empty runs standalone (one replica only)",
    ),
    Option(
        "--priority",
        "KSCHEMA_PRIORITY",
        "0",
        "this replica's leader-election priority, or `random` for a distinct one per replica (kopf pauses "
        "every replica that shares the highest priority)",
    ),
    Option(
        "--resync-interval",
        "KSCHEMA_RESYNC_INTERVAL",
        "300",
        "seconds between checks that put each Schema's status.id right when it was overwritten",
    ),
    Option(
        "--reconcile-concurrency",
        "KSCHEMA_RECONCILE_CONCURRENCY",
        "64",
        "how many reconciles of each kind (Subject, Schema) run at once; the rest of a burst waits its turn",
    ),
    Option(
        "--inline-reconciles",
        "KSCHEMA_INLINE_RECONCILES",
        str(DEFAULT_INLINE_RECONCILES),
        "how many Schema reconciles wait for their turn inside kopf's processing of their objects; the "
        "rest of a burst waits in a smaller task of its own (0: all of them do)",
    ),
    Option(
        "--api-max-request-line-bytes",
        "KSCHEMA_API_MAX_REQUEST_LINE_BYTES",
        "8190",
        "longest request line the read API accepts; longer ones get a 400 in Confluent's error shape",
    ),
    Option(
        "--api-max-header-bytes",
        "KSCHEMA_API_MAX_HEADER_BYTES",
        "8190",
        "longest header line the read API accepts; longer ones get a 400 in Confluent's error shape",
    ),
    Option(
        "--api-auth",
        "KSCHEMA_API_AUTH",
        "off",
        "read API bearer-token authentication: off, checks (compatibility and validate endpoints) or all "
        "(every endpoint but /healthz, /readyz and /metrics)",
    ),
    Option(
        "--api-auth-audience",
        "KSCHEMA_API_AUTH_AUDIENCE",
        "kschema",
        "audience the bearer tokens must be issued for (checked by the Kubernetes TokenReview API)",
    ),
    Option(
        "--api-auth-namespaces",
        "KSCHEMA_API_AUTH_NAMESPACES",
        "",
        "comma-separated namespaces whose ServiceAccounts may call the read API; * allows every namespace",
    ),
    Option(
        "--api-auth-service-accounts",
        "KSCHEMA_API_AUTH_SERVICE_ACCOUNTS",
        "",
        "comma-separated namespace/name ServiceAccounts that may call the read API",
    ),
    Option(
        "--api-auth-cache-seconds",
        "KSCHEMA_API_AUTH_CACHE_SECONDS",
        "30",
        "how long an accepted token review is reused (never past the token's expiry)",
    ),
    Option(
        "--deletion-timeout",
        "KSCHEMA_DELETION_TIMEOUT",
        "600",
        "seconds a deletion waits for an unavailable store before letting the resource go",
    ),
)


def parse_level(raw: str) -> CompatibilityLevel:
    """The `--default-compatibility` value, case-insensitively; ConfigError names the choices."""
    try:
        return CompatibilityLevel(raw.strip().upper())
    except ValueError:
        raise ConfigError(
            "--default-compatibility (KSCHEMA_DEFAULT_COMPATIBILITY) must be one of "
            f"{', '.join(CompatibilityLevel)}, got {raw!r}"
        ) from None


def add_options(parser: argparse.ArgumentParser) -> None:
    for option in OPTIONS:
        parser.add_argument(
            option.flag,
            dest=_dest(option),
            default=None,
            help=f"{option.help} (env {option.env}; default {option.default or 'none'!s})",
        )


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _dest(option: Option) -> str:
    return option.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    components: tuple[str, ...]
    store_url: str
    log_level: str
    event_loop: str
    operator: OperatorSettings
    webhook: WebhookSettings
    api: ApiSettings


def load_config(
    components: tuple[str, ...], args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> RuntimeConfig:
    """Resolves flags over environment variables over defaults and validates the result."""
    env = os.environ if env is None else env
    raw: dict[str, tuple[Option, str | None]] = {}
    for option in OPTIONS:
        value = getattr(args, _dest(option), None)
        if value is None:
            # A variable set to "" is a choice (KSCHEMA_PEERING="" runs standalone), not an absence.
            value = env.get(option.env, option.default)
        raw[_dest(option)] = (option, value)

    def text(key: str) -> str:
        return raw[key][1] or ""

    def number(key: str, *, low: int, high: int) -> int:
        option, value = raw[key]
        try:
            parsed = int(value or "")
        except ValueError:
            raise ConfigError(f"{option.flag} ({option.env}) must be an integer, got {value!r}") from None
        if not low <= parsed <= high:
            raise ConfigError(f"{option.flag} ({option.env}) must be between {low} and {high}, got {parsed}")
        return parsed

    store_url = text("store_url")
    try:
        store_from_url(store_url)
    except StoreError as exc:
        raise ConfigError(f"--store-url (KSCHEMA_STORE_URL): {exc}") from None

    log_level = text("log_level").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(
            f"--log-level (KSCHEMA_LOG_LEVEL) must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}"
        )

    event_loop = text("event_loop").lower()
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(
            f"--event-loop (KSCHEMA_EVENT_LOOP) must be one of {', '.join(EVENT_LOOPS)}, got {event_loop!r}"
        )

    default_compatibility = parse_level(text("default_compatibility"))

    kubeconfig = Path(text("kubeconfig")) if text("kubeconfig") else None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise ConfigError(f"--kubeconfig (KUBECONFIG): no such file {str(kubeconfig)!r}")

    option, deletion_raw = raw["deletion_timeout"]
    try:
        deletion_timeout = float(deletion_raw or "")
    except ValueError:
        raise ConfigError(
            f"{option.flag} ({option.env}) must be a number of seconds, got {deletion_raw!r}"
        ) from None

    option, resync_raw = raw["resync_interval"]
    try:
        resync_interval = float(resync_raw or "")
    except ValueError:
        resync_interval = -1.0
    if not 1 <= resync_interval <= 86400:
        raise ConfigError(
            f"{option.flag} ({option.env}) must be a number of seconds from 1 to 86400, got {resync_raw!r}"
        )

    health_port = number("health_port", low=0, high=65535)
    namespaces = tuple(_items(text("namespaces")))
    operator = OperatorSettings(
        namespaces=namespaces,
        kubeconfig=kubeconfig,
        peering=text("peering") or None,
        priority=(
            secrets.randbelow(2**31 - 1) + 1
            if text("priority") == "random"
            else number("priority", low=-(2**31), high=2**31 - 1)
        ),
        deletion_timeout=deletion_timeout,
        resync_interval=resync_interval,
        reconcile_concurrency=number("reconcile_concurrency", low=1, high=10_000),
        inline_reconciles=number("inline_reconciles", low=0, high=1_000_000),
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        default_compatibility=default_compatibility,
    )

    cert_dir = Path(text("webhook_cert_dir"))
    if "webhook" in components:
        for name in ("tls.crt", "tls.key"):
            if not (cert_dir / name).is_file():
                raise ConfigError(
                    f"--webhook-cert-dir (KSCHEMA_WEBHOOK_CERT_DIR): {name} is missing in {str(cert_dir)!r}"
                )
    webhook = WebhookSettings(
        cert_file=cert_dir / "tls.crt",
        key_file=cert_dir / "tls.key",
        host=text("webhook_host"),
        port=number("webhook_port", low=1, high=65535),
        kubeconfig=kubeconfig,
        default_compatibility=default_compatibility,
    )
    auth_mode = text("api_auth").lower()
    if auth_mode not in tuple(AuthMode):
        raise ConfigError(
            f"--api-auth (KSCHEMA_API_AUTH) must be one of {', '.join(AuthMode)}, got {text('api_auth')!r}"
        )
    option, cache_raw = raw["api_auth_cache_seconds"]
    try:
        cache_seconds = float(cache_raw or "")
    except ValueError:
        raise ConfigError(
            f"{option.flag} ({option.env}) must be a number of seconds, got {cache_raw!r}"
        ) from None
    try:
        auth = AuthSettings(
            mode=AuthMode(auth_mode),
            audience=text("api_auth_audience"),
            allowed_namespaces=frozenset(_items(text("api_auth_namespaces"))),
            allowed_service_accounts=frozenset(_items(text("api_auth_service_accounts"))),
            cache_seconds=cache_seconds,
        )
    except ValueError as exc:
        raise ConfigError(f"--api-auth (KSCHEMA_API_AUTH): {exc}") from None
    try:
        api = ApiSettings(
            host=text("api_host"),
            port=number("api_port", low=1, high=65535),
            max_request_line_bytes=number("api_max_request_line_bytes", low=1024, high=1024 * 1024),
            max_header_bytes=number("api_max_header_bytes", low=1024, high=1024 * 1024),
            auth=auth,
            kubeconfig=kubeconfig,
            global_compatibility=default_compatibility,
        )
    except ValueError as exc:
        raise ConfigError(f"read API settings: {exc}") from None
    return RuntimeConfig(components, store_url, log_level, event_loop, operator, webhook, api)
