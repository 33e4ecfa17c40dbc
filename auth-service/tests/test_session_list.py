"""An account's list of its signed-in sessions (ADR 0035): each login is a session, shown with
when and where it was, until it can no longer refresh; one can be ended, or all but the
caller's own, and their access tokens stop at once.

A request "from a session" carries the principal the gateway would sign for that session's
access token: its `sid` as `session_id`.
"""

import uuid

import grpc
from google.protobuf import json_format

from objectvision.v1 import auth_pb2, notification_pb2

from .conftest import as_user


async def logged_in(auth, account, *, ip: str = "", agent: str = "") -> auth_pb2.TokenPair:
    return await auth.Login(
        auth_pb2.LoginRequest(
            email=account.email, password=account.password, client_ip=ip, user_agent=agent
        )
    )


async def session_of(auth, pair: auth_pb2.TokenPair) -> str:
    principal = await auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token))
    return principal.session_id


async def listed(auth, account, session_id: str = "") -> list[auth_pb2.Session]:
    answer = await auth.ListSessions(
        auth_pb2.ListSessionsRequest(), metadata=as_user(account.id, session_id=session_id)
    )
    return list(answer.sessions)


async def test_each_login_is_listed_with_where_it_came_from_and_the_callers_own_marked(
    auth, accounts
):
    account = await accounts.create()
    laptop = await logged_in(auth, account, ip="203.0.113.7", agent="Firefox on Linux")
    phone = await logged_in(auth, account, ip="2001:db8::1", agent="objectvision-cli/1.0")

    sessions = await listed(auth, account, await session_of(auth, laptop))

    assert [found.user_agent for found in sessions] == ["objectvision-cli/1.0", "Firefox on Linux"]
    assert [found.client_ip for found in sessions] == ["2001:db8::1", "203.0.113.7"]
    assert [found.current for found in sessions] == [False, True]
    assert sessions[0].id == await session_of(auth, phone)
    for found in sessions:
        assert found.HasField("started_at") and not found.second_factor
        assert found.expires_at.ToDatetime() > found.last_active_at.ToDatetime()


async def test_a_refresh_keeps_the_session_and_moves_its_last_activity(auth, accounts):
    account = await accounts.create()
    pair = await logged_in(auth, account, agent="app")
    [before] = await listed(auth, account)

    await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))

    [after] = await listed(auth, account)
    assert (after.id, after.user_agent, after.started_at) == (
        before.id,
        "app",
        before.started_at,
    )
    assert after.last_active_at.ToDatetime() > before.last_active_at.ToDatetime()


async def test_ending_one_session_stops_its_tokens_and_leaves_the_others(auth, accounts, rejected):
    account = await accounts.create()
    kept, ended = await logged_in(auth, account), await logged_in(auth, account)
    ended_id = await session_of(auth, ended)

    await auth.EndSession(
        auth_pb2.EndSessionRequest(session_id=ended_id), metadata=account.metadata
    )

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=ended.access_token)),
    )
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=ended.refresh_token)),
    )
    assert [found.id for found in await listed(auth, account)] == [await session_of(auth, kept)]


async def test_another_accounts_an_ended_or_an_unknown_session_is_not_found(
    auth, accounts, rejected
):
    owner, other = await accounts.create(), await accounts.create()
    owners = await session_of(auth, await logged_in(auth, owner))
    gone = await logged_in(auth, other)
    gone_id = await session_of(auth, gone)
    await auth.Logout(
        auth_pb2.LogoutRequest(access_token=gone.access_token, refresh_token=gone.refresh_token)
    )

    for session_id in (owners, gone_id, str(uuid.uuid4()), "not-an-id"):
        await rejected(
            grpc.StatusCode.NOT_FOUND,
            auth.EndSession(
                auth_pb2.EndSessionRequest(session_id=session_id), metadata=other.metadata
            ),
        )
    assert [found.id for found in await listed(auth, owner)] == [owners]


async def test_logging_out_everywhere_else_keeps_the_callers_session(auth, accounts, rejected):
    account = await accounts.create()
    mine = await logged_in(auth, account)
    others = [await logged_in(auth, account) for _ in range(3)]
    mine_id = await session_of(auth, mine)

    ended = await auth.EndOtherSessions(
        auth_pb2.EndOtherSessionsRequest(), metadata=as_user(account.id, session_id=mine_id)
    )

    assert ended.ended == 3
    assert [found.id for found in await listed(auth, account, mine_id)] == [mine_id]
    for pair in others:
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token)),
        )


async def test_an_api_key_can_neither_list_nor_end_sessions(auth, accounts, rejected):
    account = await accounts.create()
    as_key = as_user(account.id, auth_method="api_key")

    for call in (
        auth.ListSessions(auth_pb2.ListSessionsRequest(), metadata=as_key),
        auth.EndOtherSessions(auth_pb2.EndOtherSessionsRequest(), metadata=as_key),
    ):
        error = await rejected(grpc.StatusCode.PERMISSION_DENIED, call)
        assert dict(error.trailing_metadata() or ())["error-code"] == "session_required"


async def new_login_notices(database, user_id: str) -> list[notification_pb2.Event]:
    rows = await database.rows(
        "SELECT payload FROM auth.outbox WHERE event_type = 'user.new_login'"
        " AND payload->>'userId' = :id ORDER BY created_at",
        id=user_id,
    )
    return [json_format.ParseDict(row.payload, notification_pb2.Event()) for row in rows]


async def test_a_login_from_a_new_place_is_announced_and_a_familiar_one_is_not(
    auth, accounts, database
):
    """The first login is the owner's own, right after signing up: nothing to tell."""
    account = await accounts.create()
    await logged_in(auth, account, ip="203.0.113.7", agent="Firefox on Linux")
    await logged_in(auth, account, ip="203.0.113.7", agent="Firefox on Linux")
    assert await new_login_notices(database, account.id) == []

    await logged_in(auth, account, ip="198.51.100.23", agent="curl/8.5.0")
    await logged_in(auth, account, ip="198.51.100.23", agent="curl/8.5.0")

    [notice] = await new_login_notices(database, account.id)
    assert (notice.new_login.client_ip, notice.new_login.user_agent) == (
        "198.51.100.23",
        "curl/8.5.0",
    )
    assert not notice.new_login.second_factor
    assert account.password not in json_format.MessageToJson(notice)


async def test_a_refused_login_from_a_new_place_is_not_announced(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    await logged_in(auth, account, ip="203.0.113.7", agent="app")

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(
            auth_pb2.LoginRequest(
                email=account.email, password="not mine", client_ip="192.0.2.66", user_agent="x"
            )
        ),
    )

    assert await new_login_notices(database, account.id) == []
