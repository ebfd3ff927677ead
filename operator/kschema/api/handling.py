"""How the read API's routes are served: each handler is wrapped once, when the app is built, with what
every request needs around it (Confluent's error shape for every failure, the request's count and latency,
authentication and `Accept` negotiation), and paths no route matches get the same treatment from a last,
catch-all route.

Why not app middlewares: aiohttp runs each middleware as one more coroutine per request, plus a middleware
of its own that it adds as soon as there is one, and a middleware has to find out per request what the
route already knows (its template for the metrics, whether it needs a token, whether it negotiates). On
the lookups serializers make (`GET /schemas/ids/{id}`, `.../versions/latest`) that work cost more than
the lookup itself. A wrapper binds those answers to the route at start-up. (The plain form of those two
lookups does not reach the router at all: the server answers it first, see `hotpath.py`.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from aiohttp import hdrs, web

from kschema.api.auth import Authenticator, AuthMode, refusal, route_is_protected, unmatched_is_protected
from kschema.api.errors import Handler, error_to_response, not_acceptable
from kschema.api.metrics import UNMATCHED, ApiMetrics, Recorder
from kschema.api.negotiation import NOT_NEGOTIATED, admits, refuses

__all__ = ["add_routes"]

_CATCH_ALL = "/{unmatched_path:.*}"

Authenticators = Callable[[web.Request], Authenticator]


def add_routes(
    app: web.Application,
    tables: Iterable[web.RouteTableDef],
    metrics: ApiMetrics,
    mode: AuthMode,
    authenticator: Authenticators,
) -> None:
    """Registers every route of `tables` in order, each wrapped for its template, then the catch-all
    that answers unknown paths (404) and known paths with another method (405) in Confluent's shape."""
    stats = metrics.requests
    for table in tables:
        for definition in table:
            if not isinstance(definition, web.RouteDef):
                raise TypeError(f"the read API serves no static files: {definition!r}")
            template = definition.path
            protected = route_is_protected(mode, template)
            # Each route is registered for its one method, so its wrapper knows the method without asking
            # the request; a GET's HEAD (aiohttp answers it from the GET handler) gets a route of its own.
            methods = [definition.method]
            if definition.method == hdrs.METH_GET:
                methods.append(hdrs.METH_HEAD)
            for method in methods:
                wrapped = _wrap(
                    definition.handler,
                    stats.route(template).recorder(None if method == hdrs.METH_ANY else method),
                    negotiate=template not in NOT_NEGOTIATED,
                    protect=(lambda request: True) if protected else None,
                    authenticator=authenticator,
                )
                app.router.add_route(method, template, wrapped, **definition.kwargs)
    unmatched = _wrap(
        _unmatched,
        stats.route(UNMATCHED).recorder(),
        negotiate=True,
        # Decided per request: the path is all there is to go by.
        protect=(lambda request: unmatched_is_protected(mode, request)) if mode is AuthMode.ALL else None,
        authenticator=authenticator,
    )
    app.router.add_route(hdrs.METH_ANY, _CATCH_ALL, unmatched)


def _wrap(
    handler: Handler,
    record: Recorder,
    *,
    negotiate: bool,
    protect: Callable[[web.Request], bool] | None,
    authenticator: Authenticators,
) -> Handler:
    """`protect` says whether a request needs a token (None: never)."""
    # CLOCK_MONOTONIC, as `perf_counter` on Linux, at two thirds of the cost of a call.
    clock = time.monotonic
    if protect is None:
        # The hot path: no token to check, so nothing to await before the handler, and `refuses`
        # written out (a call less on every lookup).

        async def serve(request: web.Request) -> web.StreamResponse:
            started = clock()
            try:
                if negotiate:
                    accept = request.headers.get("Accept")
                    if not admits(accept) and request.path not in NOT_NEGOTIATED:
                        raise not_acceptable((accept or "")[:200])
                response = await handler(request)
            except Exception as e:
                response = error_to_response(request, e)
            record(request, response.status, clock() - started)
            return response

        return serve

    async def serve_checked(request: web.Request) -> web.StreamResponse:
        started = clock()
        try:
            # Authentication first (401 before 406), as Confluent's servlet filter answers before Jersey.
            refused = await refusal(authenticator(request), request) if protect(request) else None
            if refused is not None:
                response: web.StreamResponse = refused
            elif negotiate and refuses(request):
                raise not_acceptable(request.headers.get("Accept", "")[:200])
            else:
                response = await handler(request)
        except Exception as e:
            response = error_to_response(request, e)
        record(request, response.status, clock() - started)
        return response

    return serve_checked


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """404 for a path no route matches; 405 with `Allow` for a path a route matches with other methods
    (aiohttp's router would say the same; here it is said in Confluent's error shape)."""
    allowed: set[str] = set()
    catch_all = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is catch_all:
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()
