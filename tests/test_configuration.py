"""Every setting a service reads is documented in .env.example."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from auth_service.config import AuthSettings
from detection_service.config import DetectionSettings
from gateway.config import GatewaySettings
from notification_service.config import NotificationSettings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
SETTINGS: list[type[BaseSettings]] = [
    AuthSettings,
    DetectionSettings,
    NotificationSettings,
    GatewaySettings,
]


def _variables(settings: type[BaseSettings]) -> set[str]:
    return {
        field.validation_alias
        for field in settings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    missing = {
        f"{settings.__name__}: {name}"
        for settings in SETTINGS
        for name in _variables(settings) - documented
    }
    assert not missing, f"add these to .env.example: {sorted(missing)}"


def test_every_documented_variable_is_read_by_something() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    read = set().union(*(_variables(settings) for settings in SETTINGS))
    # Read by the Makefile and the dev stack rather than by a service's settings class.
    read |= {"MODEL_PATH", "MODEL_INT8_PATH", "TRITON_URL"}
    assert documented <= read, f"documented but read by nothing: {sorted(documented - read)}"


STRONG_SECRET = "k3C9yQ7m2Vt8Lr5Wn1Xp6Bz4Hd0Fs9Ja"
SECRET_VARIABLES = {
    AuthSettings: {"SERVICE_TOKEN_SECRET"},
    DetectionSettings: {"SERVICE_TOKEN_SECRET"},
    NotificationSettings: {"SERVICE_TOKEN_SECRET", "WEBHOOK_SECRET_KEY"},
    GatewaySettings: {"SERVICE_TOKEN_SECRET"},
}


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda settings: settings.__name__)
@pytest.mark.parametrize(
    "weak_value",
    ["dev-only-service-secret-change-me", "CHANGE-ME-please-this-is-long-enough-1234", "short"],
    ids=["development default", "example value", "too short"],
)
def test_production_refuses_public_or_weak_secrets_in_every_service(
    settings: type[BaseSettings], weak_value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBJECTVISION_ENV", "production")
    for variable in SECRET_VARIABLES[settings]:
        monkeypatch.setenv(variable, STRONG_SECRET)
    for variable in SECRET_VARIABLES[settings]:
        monkeypatch.setenv(variable, weak_value)
        with pytest.raises(ValidationError, match=variable):
            settings(_env_file=None)
        monkeypatch.setenv(variable, STRONG_SECRET)
    assert settings(_env_file=None).is_production


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda settings: settings.__name__)
def test_development_accepts_the_documented_defaults(
    settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBJECTVISION_ENV", "development")
    for variable in SECRET_VARIABLES[settings]:
        monkeypatch.delenv(variable, raising=False)
    assert not settings(_env_file=None).is_production
