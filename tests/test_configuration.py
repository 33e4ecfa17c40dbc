"""Every setting a service reads is documented in .env.example."""

import re
from pathlib import Path

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
    read |= {"MODEL_PATH", "TRITON_URL"}
    assert documented <= read, f"documented but read by nothing: {sorted(documented - read)}"
