"""Typed application state of the read API."""

from __future__ import annotations

from aiohttp import web

from kschema.api.auth import Authenticator
from kschema.api.feed import FeedFollower
from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.settings import ApiSettings
from kschema.compute import WorkerPool

SETTINGS = web.AppKey("settings", ApiSettings)
INDEX = web.AppKey("index", RegistryIndex)
METRICS = web.AppKey("metrics", ApiMetrics)
FOLLOWER = web.AppKey("follower", FeedFollower)
POOL = web.AppKey("pool", WorkerPool)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
