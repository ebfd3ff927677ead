"""Typed application state of the read API."""

from __future__ import annotations

from aiohttp import web

from kschema.api.auth import Authenticator
from kschema.api.feed import FeedFollower
from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.settings import ApiSettings

SETTINGS = web.AppKey("settings", ApiSettings)
INDEX = web.AppKey("index", RegistryIndex)
METRICS = web.AppKey("metrics", ApiMetrics)
FOLLOWER = web.AppKey("follower", FeedFollower)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
