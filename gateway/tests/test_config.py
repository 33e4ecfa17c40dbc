import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings, RateLimitRule


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [("10/60", 10, 60), ("5/hour", 5, 3600), (" 3 / minute ", 3, 60), ("1/DAY", 1, 86400)],
)
def test_rate_limit_rules_parse(text: str, limit: int, window: int) -> None:
    rule = RateLimitRule.model_validate(text)
    assert (rule.limit, rule.window_seconds) == (limit, window)


@pytest.mark.parametrize("text", ["ten/60", "10", "0/60", "10/0", "10/fortnight"])
def test_bad_rate_limit_rules_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        RateLimitRule.model_validate(text)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_LOGIN", "3/30")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("MAX_REQUEST_BYTES", "2048")
    monkeypatch.setenv("TRUST_PROXY_HEADERS", "true")
    settings = GatewaySettings()
    assert settings.rate_limit_login == RateLimitRule(limit=3, window_seconds=30)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.max_request_bytes == 2048
    assert settings.trust_proxy_headers is True


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GATEWAY_HOST",
        "GATEWAY_PORT",
        "AUTH_SERVICE_ADDR",
        "MAX_REQUEST_BYTES",
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_SIGNUP",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = GatewaySettings()
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8000)
    assert settings.auth_service_addr == "127.0.0.1:50051"
    assert settings.max_request_bytes == 1024 * 1024
    assert settings.rate_limit_login == RateLimitRule(limit=10, window_seconds=60)
    assert settings.rate_limit_signup == RateLimitRule(limit=5, window_seconds=3600)


def test_production_refuses_the_development_service_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SERVICE_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("OBJECTVISION_ENV", "production")
    with pytest.raises(ValidationError, match="SERVICE_TOKEN_SECRET"):
        GatewaySettings()
    strong = "k3C9yQ7m2Vt8Lr5Wn1Xp6Bz4Hd0Fs9Ja"
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", strong)
    assert GatewaySettings().service_token_secret == strong


def test_the_jwks_max_age_may_not_be_shorter_than_the_refresh_interval() -> None:
    with pytest.raises(ValidationError, match="JWKS_MAX_AGE_SECONDS must be at least"):
        GatewaySettings(_env_file=None, JWKS_MIN_REFRESH_SECONDS=10, JWKS_MAX_AGE_SECONDS=5)

    settings = GatewaySettings(_env_file=None, JWKS_MIN_REFRESH_SECONDS=10, JWKS_MAX_AGE_SECONDS=10)
    assert settings.jwks_max_age_seconds == 10
