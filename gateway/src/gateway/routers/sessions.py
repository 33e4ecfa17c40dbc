"""The caller's signed-in sessions (ADR 0035): where the account is logged in, and logging
one of them out, or every one but this. Signed-in sessions only (an API key is 403
`session_required`): a leaked key must not be able to log its owner out, nor see where they
log in from.
"""

import uuid

from fastapi import Response

from gateway.auth.dependencies import AccountUpstream, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.sessions import EndedSessionsOut, SessionListOut, SessionOut
from objectvision.v1 import auth_pb2

router = signed_in_router("/api/v1/users", "sessions")


@router.get(
    "/me/sessions", summary="The caller's signed-in sessions", responses=error_responses(403)
)
async def list_sessions(upstream: AccountUpstream) -> SessionListOut:
    """The sessions that can still refresh, most recently active first, with when and where
    each login was; the one this request uses is `current`."""
    listed = await upstream.call(upstream.auth.ListSessions, auth_pb2.ListSessionsRequest())
    return SessionListOut(items=[SessionOut.from_proto(found) for found in listed.sessions])


@router.delete(
    "/me/sessions/{session_id:uuid}",
    status_code=204,
    response_class=Response,
    summary="Log one session out",
    responses=error_responses(403, 404, 422),
)
async def end_session(session_id: uuid.UUID, upstream: AccountUpstream) -> Response:
    """Its refresh token and every access token minted from it stop working at once. Another
    account's session, an ended or an unknown one is 404 alike. The current one may be ended
    too: that is a logout."""
    await upstream.call(
        upstream.auth.EndSession, auth_pb2.EndSessionRequest(session_id=str(session_id))
    )
    return Response(status_code=204)


@router.delete(
    "/me/sessions",
    summary="Log out every other session",
    responses=error_responses(403),
)
async def end_other_sessions(upstream: AccountUpstream) -> EndedSessionsOut:
    """Every session of the account but the one making this request ends at once."""
    ended = await upstream.call(upstream.auth.EndOtherSessions, auth_pb2.EndOtherSessionsRequest())
    return EndedSessionsOut(ended=ended.ended)
