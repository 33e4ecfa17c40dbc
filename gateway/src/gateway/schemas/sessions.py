"""Bodies of the session routes (ADR 0035)."""

from datetime import datetime

from pydantic import Field

from gateway.schemas.base import ApiModel, ProtoMirror


class SessionOut(ProtoMirror):
    """One signed-in session: a login and the refreshes that kept it going."""

    id: str
    started_at: datetime | None = Field(
        description="When the login was; null for sessions opened before logins were recorded."
    )
    last_active_at: datetime = Field(description="The last login or token refresh.")
    expires_at: datetime = Field(description="When it ends unless refreshed again.")
    client_ip: str = Field(description="The address the login came from, as the gateway saw it.")
    user_agent: str = Field(description="The login's User-Agent.")
    second_factor: bool = Field(description="Whether the login gave a second factor.")
    current: bool = Field(description="The session this request was made with.")


class SessionListOut(ApiModel):
    items: list[SessionOut]


class EndedSessionsOut(ApiModel):
    ended: int = Field(description="How many sessions were ended.")
