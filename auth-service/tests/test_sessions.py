"""Login, refresh-token rotation, reuse detection and logout."""

import asyncio

import argon2
import grpc
import jwt

from objectvision.v1 import auth_pb2

LOGIN_FAILED = "incorrect email or password"


async def test_login_with_the_right_password_returns_a_bearer_token_pair(auth, accounts, settings):
    account = await accounts.create()

    pair = await auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password))

    assert pair.token_type == "Bearer"
    assert pair.expires_in == settings.access_token_expire_minutes * 60
    assert pair.refresh_token.startswith("ovr_")
    principal = await auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token))
    assert principal.user_id == account.id
    assert principal.auth_method == "jwt"


async def test_login_accepts_the_email_in_any_case(auth, accounts):
    account = await accounts.create()

    await auth.Login(auth_pb2.LoginRequest(email=account.email.upper(), password=account.password))


async def test_login_finds_the_account_under_every_spelling_of_its_email(auth, accounts):
    """The same key the gateway's login limits count under (objectvision_common.emails)."""
    account = await accounts.create()
    local = account.email.split("@")[0]

    for spelling in (f"{local}@\uff45xample.com", f" {local.upper()}@EXAMPLE.COM "):
        pair = await auth.Login(auth_pb2.LoginRequest(email=spelling, password=account.password))
        principal = await auth.VerifyToken(
            auth_pb2.VerifyTokenRequest(access_token=pair.access_token)
        )
        assert principal.user_id == account.id


async def test_login_with_a_wrong_password_and_with_an_unknown_email_fail_identically(
    auth, accounts, rejected
):
    account = await accounts.create()

    wrong_password = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=account.email, password="wrong password!")),
    )
    unknown_email = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=accounts.new_email(), password=account.password)),
    )
    malformed_email = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email="nonsense", password=account.password)),
    )

    assert wrong_password.details() == unknown_email.details() == malformed_email.details()
    assert wrong_password.details() == LOGIN_FAILED


async def test_login_to_a_disabled_account_fails_like_a_wrong_password(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    await database.execute("UPDATE auth.users SET is_active = false WHERE id = :id", id=account.id)

    error = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password)),
    )

    assert error.details() == LOGIN_FAILED


async def test_login_rehashes_a_password_hashed_with_older_parameters(
    auth, accounts, database, settings
):
    account = await accounts.create()
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    old_hash = weak.hash(account.password)
    await database.execute(
        "UPDATE auth.users SET password_hash = :h WHERE id = :id", h=old_hash, id=account.id
    )

    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password))

    new_hash = await database.value(
        "SELECT password_hash FROM auth.users WHERE id = :id", id=account.id
    )
    assert new_hash != old_hash
    parameters = argon2.extract_parameters(new_hash)
    assert parameters.type is argon2.Type.ID
    assert parameters.time_cost == settings.argon2_time_cost
    assert parameters.memory_cost == settings.argon2_memory_cost_kib
    assert parameters.parallelism == settings.argon2_parallelism
    # And the upgraded hash still opens the account.
    await auth.Login(auth_pb2.LoginRequest(email=account.email, password=account.password))


async def test_login_leaves_a_current_hash_alone(auth, accounts, database):
    account = await accounts.create()
    before = await database.value(
        "SELECT password_hash FROM auth.users WHERE id = :id", id=account.id
    )

    await accounts.login(account)

    after = await database.value(
        "SELECT password_hash FROM auth.users WHERE id = :id", id=account.id
    )
    assert after == before


async def test_refresh_rotates_the_refresh_token_and_issues_a_new_access_token(auth, accounts):
    account = await accounts.create()
    first = await accounts.login(account)

    second = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))

    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    principal = await auth.VerifyToken(
        auth_pb2.VerifyTokenRequest(access_token=second.access_token)
    )
    assert principal.user_id == account.id
    third = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=second.refresh_token))
    assert third.refresh_token not in {first.refresh_token, second.refresh_token}


async def test_refresh_tokens_are_stored_only_as_hashes(accounts, database):
    account = await accounts.create()
    pair = await accounts.login(account)

    stored = await database.value(
        "SELECT string_agg(row_to_json(t)::text, ' ') FROM auth.refresh_tokens t"
        " WHERE user_id = :id",
        id=account.id,
    )

    assert pair.refresh_token not in stored


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(auth, accounts, rejected):
    account = await accounts.create()
    stolen = await accounts.login(account)
    rotated = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=stolen.refresh_token))

    reuse = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=stolen.refresh_token)),
    )

    assert "already used" in reuse.details()
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=rotated.refresh_token)),
    )


async def test_reuse_revokes_only_that_family_not_other_sessions(auth, accounts, rejected):
    account = await accounts.create()
    laptop = await accounts.login(account)
    phone = await accounts.login(account)
    await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=laptop.refresh_token))

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=laptop.refresh_token)),
    )

    await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=phone.refresh_token))


async def test_two_concurrent_uses_of_one_refresh_token_count_as_reuse(auth, accounts, rejected):
    account = await accounts.create()
    pair = await accounts.login(account)
    request = auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)

    results = await asyncio.gather(
        auth.Refresh(request), auth.Refresh(request), return_exceptions=True
    )

    winners = [result for result in results if isinstance(result, auth_pb2.TokenPair)]
    losers = [result for result in results if isinstance(result, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].code() == grpc.StatusCode.UNAUTHENTICATED
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=winners[0].refresh_token)),
    )


async def test_an_unknown_or_expired_refresh_token_is_unauthenticated(
    auth, accounts, database, rejected
):
    account = await accounts.create()
    pair = await accounts.login(account)
    await database.execute(
        "UPDATE auth.refresh_tokens SET expires_at = now() - interval '1 second'"
        " WHERE user_id = :id",
        id=account.id,
    )

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token="ovr_not-a-real-token")),
    )
    expired = await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
    )
    assert "expired" in expired.details()


async def test_logout_revokes_the_access_token_and_the_refresh_token(
    auth, accounts, redis, rejected, settings
):
    account = await accounts.create()
    pair = await accounts.login(account)

    await auth.Logout(
        auth_pb2.LogoutRequest(access_token=pair.access_token, refresh_token=pair.refresh_token)
    )

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=pair.access_token)),
    )
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
    )
    # The gateway reads the same key: `auth:revoked:<jti>`, alive for the token's lifetime.
    jti = jwt.decode(pair.access_token, options={"verify_signature": False})["jti"]
    ttl = await redis.ttl(f"auth:revoked:{jti}")
    assert 0 < ttl <= settings.access_token_expire_minutes * 60 + 5


async def test_logout_ends_the_whole_session_including_earlier_rotations(auth, accounts, rejected):
    account = await accounts.create()
    first = await accounts.login(account)
    current = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))

    await auth.Logout(auth_pb2.LogoutRequest(refresh_token=current.refresh_token))

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=current.refresh_token)),
    )


async def test_logging_out_twice_is_harmless(auth, accounts):
    account = await accounts.create()
    pair = await accounts.login(account)
    request = auth_pb2.LogoutRequest(
        access_token=pair.access_token, refresh_token=pair.refresh_token
    )

    await auth.Logout(request)
    await auth.Logout(request)


async def test_logout_refuses_tokens_of_two_different_users(auth, accounts, rejected):
    alice = await accounts.login(await accounts.create())
    bob = await accounts.login(await accounts.create())

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Logout(
            auth_pb2.LogoutRequest(access_token=alice.access_token, refresh_token=bob.refresh_token)
        ),
    )

    await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=bob.refresh_token))


async def test_logout_without_any_token_is_invalid_argument(auth, rejected):
    await rejected(grpc.StatusCode.INVALID_ARGUMENT, auth.Logout(auth_pb2.LogoutRequest()))


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def _verify(auth, token: str):
    return await auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=token))


async def test_every_access_token_of_a_session_names_its_refresh_token_family(
    auth, accounts, database
):
    account = await accounts.create()
    first = await accounts.login(account)
    second = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))
    other = await accounts.login(account)

    family = await database.value(
        "SELECT family_id::text FROM auth.refresh_tokens WHERE user_id = :id"
        " ORDER BY created_at LIMIT 1",
        id=account.id,
    )
    assert _claims(first.access_token)["sid"] == _claims(second.access_token)["sid"] == family
    assert _claims(other.access_token)["sid"] != family


async def test_logout_refuses_access_tokens_minted_earlier_in_the_session(auth, accounts, rejected):
    account = await accounts.create()
    first = await accounts.login(account)
    second = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))
    elsewhere = await accounts.login(account)

    await auth.Logout(
        auth_pb2.LogoutRequest(access_token=second.access_token, refresh_token=second.refresh_token)
    )

    for token in (first.access_token, second.access_token):
        await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, token))
    # Only that session ended.
    assert (await _verify(auth, elsewhere.access_token)).user_id == account.id


async def test_logout_with_a_stale_refresh_token_still_ends_the_session(auth, accounts, rejected):
    account = await accounts.create()
    first = await accounts.login(account)
    second = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))

    await auth.Logout(
        auth_pb2.LogoutRequest(access_token=second.access_token, refresh_token=first.refresh_token)
    )

    for token in (first.access_token, second.access_token):
        await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, token))
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=second.refresh_token)),
    )


async def test_logout_with_only_a_stale_refresh_token_ends_the_session(auth, accounts, rejected):
    account = await accounts.create()
    first = await accounts.login(account)
    second = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))

    await auth.Logout(auth_pb2.LogoutRequest(refresh_token=first.refresh_token))

    for token in (first.access_token, second.access_token):
        await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, token))


async def test_refresh_token_reuse_refuses_every_access_token_of_the_session(
    auth, accounts, rejected
):
    account = await accounts.create()
    stolen = await accounts.login(account)
    rotated = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=stolen.refresh_token))
    other = await accounts.login(account)

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=stolen.refresh_token)),
    )

    for token in (stolen.access_token, rotated.access_token):
        await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, token))
    assert (await _verify(auth, other.access_token)).user_id == account.id


async def test_a_session_stays_revoked_only_as_long_as_its_tokens_could_live(
    auth, accounts, redis, settings
):
    account = await accounts.create()
    pair = await accounts.login(account)

    await auth.Logout(auth_pb2.LogoutRequest(refresh_token=pair.refresh_token))

    # The gateway reads the same key: `auth:revoked-session:<sid>`.
    ttl = await redis.ttl(f"auth:revoked-session:{_claims(pair.access_token)['sid']}")
    lifetime = settings.access_token_expire_minutes * 60
    assert lifetime < ttl <= lifetime + 5


async def test_a_new_password_refuses_the_access_tokens_of_every_session(auth, accounts, rejected):
    account = await accounts.create()
    laptop = await accounts.login(account)
    phone = await accounts.login(account)

    await auth.UpdateUser(
        auth_pb2.UpdateUserRequest(
            password="a brand new password", current_password=account.password
        ),
        metadata=account.metadata,
    )

    for pair in (laptop, phone):
        await rejected(grpc.StatusCode.UNAUTHENTICATED, _verify(auth, pair.access_token))
        await rejected(
            grpc.StatusCode.UNAUTHENTICATED,
            auth.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
        )
    fresh = await auth.Login(
        auth_pb2.LoginRequest(email=account.email, password="a brand new password")
    )
    assert (await _verify(auth, fresh.access_token)).user_id == account.id
