"""Shared pytest configuration: fixture modules are registered here, one line each."""

pytest_plugins = [
    "tests.harness.cluster",  # first: the Argo CD harness builds on it
    "tests.harness.apicurio",
    "tests.harness.argocd",
    "tests.harness.postgres",
    "tests.harness.stores",
]
