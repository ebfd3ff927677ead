"""Shared pytest configuration: fixture modules are registered here, one line each."""

pytest_plugins = [
    "tests.harness.apicurio",
    "tests.harness.argocd",
    "tests.harness.cluster",
    "tests.harness.postgres",
    "tests.harness.stores",
]
