"""Start-up configuration: flags over environment variables over defaults, and errors that name the
flag and its variable."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
import uvloop

from kschema.cli.serve import loop_factory
from kschema.runtime.config import ConfigError, add_options, load_config


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    (tmp_path / "tls.crt").write_text("certificate")
    (tmp_path / "tls.key").write_text("key")
    return tmp_path


def test_defaults_give_a_sqlite_store_and_the_confluent_port() -> None:
    config = load_config(("api",), _args(), env={})

    assert config.store_url == "sqlite:///kschema.db"
    assert config.api.port == 8081
    assert config.operator.peering == "kschema"
    assert config.operator.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert config.event_loop == "uvloop"


def test_the_event_loop_is_uvloop_unless_asyncio_is_asked_for() -> None:
    chosen = {
        name: loop_factory(load_config(("api",), _args("--event-loop", name), env={}).event_loop)()
        for name in ("uvloop", "ASYNCIO")
    }
    try:
        assert isinstance(chosen["uvloop"], uvloop.Loop)
        assert not isinstance(chosen["ASYNCIO"], uvloop.Loop)
        assert isinstance(chosen["ASYNCIO"], asyncio.BaseEventLoop)
    finally:
        for loop in chosen.values():
            loop.close()


def test_a_flag_wins_over_its_environment_variable() -> None:
    config = load_config(("api",), _args("--api-port", "9000"), env={"KSCHEMA_API_PORT": "7000"})

    assert config.api.port == 9000


def test_environment_variables_configure_every_component(certs: Path) -> None:
    env = {
        "KSCHEMA_STORE_URL": "postgresql://kschema@db/registry",
        "KSCHEMA_NAMESPACES": "team-a, team-b",
        "KSCHEMA_WEBHOOK_CERT_DIR": str(certs),
        "KSCHEMA_WEBHOOK_PORT": "8443",
        "KSCHEMA_PEERING": "",
        "KSCHEMA_HEALTH_PORT": "0",
        "KSCHEMA_LOG_LEVEL": "debug",
        "KSCHEMA_RECONCILE_CONCURRENCY": "16",
        "KSCHEMA_INLINE_RECONCILES": "0",
    }

    config = load_config(("operator", "webhook", "api"), _args(), env=env)

    assert config.store_url == "postgresql://kschema@db/registry"
    assert config.operator.namespaces == ("team-a", "team-b")
    assert config.operator.peering is None
    assert config.operator.liveness_endpoint is None
    assert config.operator.reconcile_concurrency == 16
    assert config.operator.inline_reconciles == 0
    assert config.webhook.cert_file == certs / "tls.crt"
    assert config.webhook.port == 8443
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (
            (),
            {"KSCHEMA_STORE_URL": "mysql://x"},
            "--store-url (KSCHEMA_STORE_URL): unsupported store URL scheme",
        ),
        ((), {"KSCHEMA_STORE_URL": "sqlite://"}, "--store-url (KSCHEMA_STORE_URL): a SQLite store URL is"),
        (("--api-port", "http"), {}, "--api-port (KSCHEMA_API_PORT) must be an integer, got 'http'"),
        ((), {"KSCHEMA_API_PORT": "70000"}, "--api-port (KSCHEMA_API_PORT) must be between 1 and 65535"),
        ((), {"KSCHEMA_LOG_LEVEL": "LOUD"}, "--log-level (KSCHEMA_LOG_LEVEL) must be one of"),
        (
            (),
            {"KSCHEMA_EVENT_LOOP": "trio"},
            "--event-loop (KSCHEMA_EVENT_LOOP) must be one of uvloop, asyncio, got 'trio'",
        ),
        (("--kubeconfig", "/nonexistent/kubeconfig"), {}, "--kubeconfig (KUBECONFIG): no such file"),
        (
            (),
            {"KSCHEMA_DELETION_TIMEOUT": "soon"},
            "--deletion-timeout (KSCHEMA_DELETION_TIMEOUT) must be a number",
        ),
        ((), {"KSCHEMA_API_AUTH": "yes"}, "--api-auth (KSCHEMA_API_AUTH) must be one of off, checks, all"),
        (
            (),
            {"KSCHEMA_API_AUTH": "all"},
            "--api-auth (KSCHEMA_API_AUTH): authentication is on but allows nobody",
        ),
        (
            (),
            {"KSCHEMA_API_AUTH": "checks", "KSCHEMA_API_AUTH_SERVICE_ACCOUNTS": "bob"},
            "allowed ServiceAccount 'bob' must be namespace/name",
        ),
        (
            (),
            {"KSCHEMA_API_AUTH_CACHE_SECONDS": "long"},
            "--api-auth-cache-seconds (KSCHEMA_API_AUTH_CACHE_SECONDS) must be a number",
        ),
        (
            (),
            {"KSCHEMA_RECONCILE_CONCURRENCY": "0"},
            "--reconcile-concurrency (KSCHEMA_RECONCILE_CONCURRENCY) must be between 1 and 10000, got 0",
        ),
        (
            (),
            {"KSCHEMA_INLINE_RECONCILES": "-1"},
            "--inline-reconciles (KSCHEMA_INLINE_RECONCILES) must be between 0 and 1000000, got -1",
        ),
        (
            (),
            {"KSCHEMA_API_MAX_HEADER_BYTES": "100"},
            "--api-max-header-bytes (KSCHEMA_API_MAX_HEADER_BYTES) must be between 1024",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_the_flag_and_its_variable(
    argv: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(("api",), _args(*argv), env=env)

    assert expected in str(refused.value)


def test_the_webhook_needs_its_certificate_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(("webhook",), _args("--webhook-cert-dir", str(tmp_path)), env={})

    assert str(refused.value) == (
        f"--webhook-cert-dir (KSCHEMA_WEBHOOK_CERT_DIR): tls.crt is missing in '{tmp_path}'"
    )


def test_components_that_do_not_serve_https_need_no_certificates(tmp_path: Path) -> None:
    config = load_config(("api", "operator"), _args("--webhook-cert-dir", str(tmp_path)), env={})

    assert config.components == ("api", "operator")


def test_the_cli_exits_2_with_the_message_on_bad_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    from kschema.cli.main import main

    assert main(["api", "--api-port", "0"]) == 2
    assert "--api-port (KSCHEMA_API_PORT) must be between 1 and 65535, got 0" in capsys.readouterr().err


def test_read_api_authentication_and_request_limits_come_from_their_variables() -> None:
    env = {
        "KSCHEMA_API_AUTH": "CHECKS",
        "KSCHEMA_API_AUTH_AUDIENCE": "registry",
        "KSCHEMA_API_AUTH_NAMESPACES": "apps, ci",
        "KSCHEMA_API_AUTH_SERVICE_ACCOUNTS": "ops/deployer",
        "KSCHEMA_API_AUTH_CACHE_SECONDS": "10",
        "KSCHEMA_API_MAX_REQUEST_LINE_BYTES": "4096",
        "KSCHEMA_API_MAX_HEADER_BYTES": "16384",
    }

    api = load_config(("api",), _args(), env=env).api

    assert api.auth.mode == "checks"
    assert api.auth.audience == "registry"
    assert api.auth.allowed_namespaces == {"apps", "ci"}
    assert api.auth.allowed_service_accounts == {"ops/deployer"}
    assert api.auth.cache_seconds == 10
    assert (api.max_request_line_bytes, api.max_header_bytes) == (4096, 16384)


def test_read_api_authentication_is_off_by_default() -> None:
    assert load_config(("api",), _args(), env={}).api.auth.mode == "off"


def test_a_random_priority_differs_between_replicas() -> None:
    # kopf pauses every replica sharing the highest priority, so the replicas of one Deployment draw theirs.
    drawn = {
        load_config(("operator",), _args(), env={"KSCHEMA_PRIORITY": "random"}).operator.priority
        for _ in range(20)
    }

    assert len(drawn) == 20
    assert all(0 < p < 2**31 for p in drawn)


def test_a_priority_that_is_neither_a_number_nor_random_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--priority \(KSCHEMA_PRIORITY\) must be an integer"):
        load_config(("operator",), _args(), env={"KSCHEMA_PRIORITY": "randomly"})
