"""The API client's session: the proxy taken from the environment once, no per-request look-ups of the
environment or `~/.netrc`, and JSON bodies sent without the walk for generated model objects."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from kubernetes_asyncio import client

from kschema.kubeapi import ApiClient, JsonBody, environment_proxy

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_environment_names_the_proxy_of_the_api_servers_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    assert environment_proxy("https://10.0.0.1:6443") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    assert environment_proxy("https://10.0.0.1:6443") == "http://proxy.corp:3128"
    assert environment_proxy("http://10.0.0.1:8080") is None  # no HTTP_PROXY
    monkeypatch.setenv("NO_PROXY", "10.0.0.1,.svc")
    assert environment_proxy("https://10.0.0.1:6443") is None
    assert environment_proxy("https://kubernetes.default.svc:443") is None
    assert environment_proxy("https://api.example.com") == "http://proxy.corp:3128"


def _client(host: str) -> tuple[bool, str | None]:
    async def main() -> tuple[bool, str | None]:
        configuration = client.Configuration(host=host)
        api = ApiClient(configuration)
        try:
            return api.rest_client.pool_manager.trust_env, api.rest_client.proxy
        finally:
            await api.close()

    return asyncio.run(main())


def test_the_session_reads_the_environment_once_not_on_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _client("https://10.0.0.1:6443") == (False, None)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    assert _client("https://10.0.0.1:6443") == (False, "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "10.0.0.1")
    assert _client("https://10.0.0.1:6443") == (False, None)


def test_a_json_body_is_sent_as_it_is_and_other_bodies_are_still_sanitised() -> None:
    async def main() -> None:
        api = ApiClient(client.Configuration(host="https://10.0.0.1:6443"))
        try:
            body = JsonBody({"status": {"conditions": [{"type": "Ready", "status": "True"}], "id": 7}})
            assert api.sanitize_for_serialization(body) is body
            stamp = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
            assert api.sanitize_for_serialization({"at": stamp}) == {"at": "2026-01-02T03:04:05+00:00"}
        finally:
            await api.close()

    asyncio.run(main())
