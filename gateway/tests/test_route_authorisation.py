"""Every authenticated route says what an API key needs to call it (ADR 0026), so a new route
cannot forget: a scope, a signed-in session, or (on an explicit short list) any credential.

Read from the app itself, as FastAPI builds it: each route's dependency tree and its OpenAPI
entry. What the routes answer to real keys is tests/test_api_key_scopes.py.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIWebSocketRoute, iter_route_contexts

from gateway.app import create_app
from gateway.auth.dependencies import (
    ANY_CREDENTIAL,
    SESSION_ONLY,
    Authorisation,
    current_access_token,
    current_principal,
    dependency_calls,
    route_authorisation,
)
from gateway.config import GatewaySettings
from gateway.routers import jobs_ws, live_detect
from objectvision_common.api_keys import Scope

# The caller's own profile and settings, read: a script's "who am I", open to any key.
ANY_KEY_ROUTES = {
    ("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/users/get-profile"),
    ("GET", "/api/v1/users/me/settings"),
    # What the caller used and has left of its quota: a device with a detect key asks too.
    ("GET", "/api/v1/users/me/usage"),
    # How long the caller's stored work is kept: as readable as its usage.
    ("GET", "/api/v1/users/me/retention"),
}
# Routes that authenticate inside (no HTTP dependencies on a WebSocket), with what they check.
WEBSOCKET_AUTHORISATIONS = {
    "/api/v1/ws/jobs/{job_id}": jobs_ws.STREAM_AUTHORISATION,
    "/api/v1/ws/detect": live_detect.STREAM_AUTHORISATION,
}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(GatewaySettings(SERVICE_TOKEN_SECRET="route-authorisation-test-secret"))


def _http_routes(app: FastAPI) -> Iterator[tuple[str, str, Dependant]]:
    for context in iter_route_contexts(app.routes):
        dependant = getattr(context, "dependant", None)
        if dependant is None:
            continue
        for method in sorted(context.methods or ()):
            yield method, context.path_format, dependant


def _authenticated(dependant: Dependant, *by: Callable[..., Any]) -> bool:
    return any(call in by for call in dependency_calls(dependant))


def test_every_authenticated_route_declares_what_an_api_key_needs(app: FastAPI) -> None:
    undeclared, open_to_any_key, by_route = [], set(), {}
    for method, path, dependant in _http_routes(app):
        if not _authenticated(dependant, current_principal):
            continue
        authorisation = route_authorisation(dependant)
        by_route[(method, path)] = authorisation
        if authorisation is None:
            undeclared.append(f"{method} {path}")
        elif authorisation == ANY_CREDENTIAL:
            open_to_any_key.add((method, path))

    assert not undeclared, f"routes that take a caller but declare no Authorisation: {undeclared}"
    assert open_to_any_key == ANY_KEY_ROUTES
    assert len(by_route) > 30
    assert by_route[("POST", "/api/v1/detect/image")] == Authorisation(scope=Scope.DETECT)
    assert by_route[("GET", "/api/v1/detect/history")] == Authorisation(scope=Scope.RESULTS_READ)
    assert by_route[("DELETE", "/api/v1/detect/{detection_id}")] == Authorisation(
        scope=Scope.RESULTS_WRITE
    )
    assert by_route[("POST", "/api/v1/webhooks")] == Authorisation(scope=Scope.WEBHOOKS)
    for rerun in ("/api/v1/detect/history/rerun", "/api/v1/detect/jobs/{job_id}/rerun"):
        assert by_route[("POST", rerun)] == Authorisation(
            scope=Scope.DETECT, also_scope=Scope.RESULTS_READ
        )
    for account_route in (
        ("POST", "/api/v1/users/me/api-keys"),
        ("GET", "/api/v1/users/me/api-keys"),
        ("DELETE", "/api/v1/users/me/api-keys/{key_id}"),
        ("PATCH", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me/settings"),
        ("GET", "/api/v1/users/{user_id}"),
        ("PATCH", "/api/v1/users/{user_id}"),
        ("POST", "/api/v1/auth/resend-verification"),
    ):
        assert by_route[account_route] == SESSION_ONLY, account_route
    # Every scope guards some route.
    assert {a.scope for a in by_route.values() if a is not None} == {*Scope, None}


def test_routes_of_the_session_itself_take_a_bearer_token(app: FastAPI) -> None:
    """Logout acts on the access token it is sent with: no API key can stand in for it."""
    session_routes = {
        f"{method} {path}"
        for method, path, dependant in _http_routes(app)
        if _authenticated(dependant, current_access_token)
        and not _authenticated(dependant, current_principal)
    }
    assert session_routes == {"POST /api/v1/auth/logout"}


def test_websocket_routes_are_each_authorised_by_hand(app: FastAPI) -> None:
    websockets = {
        context.path_format
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIWebSocketRoute)
    }
    assert websockets == set(WEBSOCKET_AUTHORISATIONS)
    assert WEBSOCKET_AUTHORISATIONS["/api/v1/ws/jobs/{job_id}"].scope == Scope.RESULTS_READ
    assert WEBSOCKET_AUTHORISATIONS["/api/v1/ws/detect"].scope == Scope.DETECT


def test_the_openapi_document_gives_each_restricted_route_its_403(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for method, path, dependant in _http_routes(app):
        authorisation = route_authorisation(dependant)
        if authorisation is None or authorisation == ANY_CREDENTIAL:
            continue
        forbidden = paths[path][method.lower()]["responses"].get("403")
        assert forbidden is not None, f"{method} {path} does not document its 403"
        expected = (
            " and ".join(f"`{scope}`" for scope in authorisation.scopes)
            if authorisation.scopes
            else "`session_required`"
        )
        assert expected in forbidden["description"], (method, path, forbidden)
        assert forbidden["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    # A route that already answered 403 for its own reason keeps it, with the key's added.
    delete_me = paths["/api/v1/users/me"]["delete"]["responses"]["403"]["description"]
    assert delete_me.startswith("Not allowed for this caller")
    assert "403" not in paths["/api/v1/users/me"]["get"]["responses"]


def test_one_route_cannot_declare_two_authorisations() -> None:
    outer = Dependant(
        call=lambda: None,
        dependencies=[
            Dependant(call=Authorisation(scope=Scope.DETECT)),
            Dependant(call=SESSION_ONLY),
        ],
    )
    with pytest.raises(TypeError, match="more than one authorisation"):
        route_authorisation(outer)
