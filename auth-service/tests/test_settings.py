"""GetSettings and UpdateSettings."""

import grpc

from objectvision.v1 import auth_pb2


async def test_update_settings_changes_only_the_fields_given(auth, accounts):
    account = await accounts.create()

    dark = await auth.UpdateSettings(
        auth_pb2.UpdateSettingsRequest(theme="dark"), metadata=account.metadata
    )
    quiet = await auth.UpdateSettings(
        auth_pb2.UpdateSettingsRequest(notifications_enabled=False), metadata=account.metadata
    )

    assert (dark.theme, dark.notifications_enabled) == ("dark", True)
    assert (quiet.theme, quiet.notifications_enabled) == ("dark", False)
    stored = await auth.GetSettings(auth_pb2.GetSettingsRequest(), metadata=account.metadata)
    assert (stored.theme, stored.notifications_enabled) == ("dark", False)
    assert stored.updated_at.ToDatetime() >= dark.updated_at.ToDatetime()


async def test_every_theme_is_light_dark_or_system(auth, accounts, rejected):
    account = await accounts.create()
    for theme in ("light", "dark", "system"):
        settings = await auth.UpdateSettings(
            auth_pb2.UpdateSettingsRequest(theme=theme), metadata=account.metadata
        )
        assert settings.theme == theme

    error = await rejected(
        grpc.StatusCode.INVALID_ARGUMENT,
        auth.UpdateSettings(
            auth_pb2.UpdateSettingsRequest(theme="neon"), metadata=account.metadata
        ),
    )

    assert "light, dark, system" in error.details()


async def test_settings_of_another_user_are_not_found(auth, accounts, rejected):
    alice = await accounts.create()
    bob = await accounts.create()

    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.GetSettings(auth_pb2.GetSettingsRequest(user_id=bob.id), metadata=alice.metadata),
    )
    await rejected(
        grpc.StatusCode.NOT_FOUND,
        auth.UpdateSettings(
            auth_pb2.UpdateSettingsRequest(user_id=bob.id, theme="dark"), metadata=alice.metadata
        ),
    )


async def test_an_admin_can_read_another_users_settings(auth, accounts):
    admin = await accounts.admin()
    bob = await accounts.create()

    settings = await auth.GetSettings(
        auth_pb2.GetSettingsRequest(user_id=bob.id), metadata=admin.metadata
    )

    assert settings.user_id == bob.id


async def test_settings_need_an_authenticated_caller(auth, rejected):
    await rejected(grpc.StatusCode.UNAUTHENTICATED, auth.GetSettings(auth_pb2.GetSettingsRequest()))
