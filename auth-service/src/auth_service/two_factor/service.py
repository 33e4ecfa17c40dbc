"""Second factors (ADR 0034): enrolling an authenticator app, asking for its code at login,
recovery codes, and turning it off.

A factor is TOTP (RFC 6238) as every authenticator app reads it: SHA-1, 6 digits, 30-second
steps, through `pyotp`. Its secret is stored sealed, recovery codes as SHA-256. A code is
accepted for the current step and one either side (phone clocks drift) and never for a step
at or before the last one accepted, so a code seen once cannot be used again.

Each function that changes something commits, except `check_login`, which joins the login's
own unit of work.
"""

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.tokens import sessions
from auth_service.tokens.revocation import RevokedAccessTokens
from auth_service.two_factor.models import RecoveryCode, TotpFactor
from auth_service.users.models import User
from objectvision_common.account_events import (
    RECOVERY_CODE_USED,
    TWO_FACTOR_DISABLED,
    TWO_FACTOR_ENABLED,
)
from objectvision_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    SecondFactorRequired,
    Unauthenticated,
)
from objectvision_common.sealing import SecretBox

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
# Steps either side of now whose code is still accepted: one covers 30 s of clock drift.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# Bytes of randomness in a recovery code: 80 bits, written as 20 hex digits in four groups.
RECOVERY_CODE_BYTES = 10
RECOVERY_CODE_GROUP = 5

SECOND_FACTOR_REQUIRED = (
    "this account uses two-factor authentication: send the code from its authenticator app "
    "(or a recovery code) as second_factor_code"
)
INVALID_CODE_CODE = "invalid_second_factor"
INVALID_CODE = "the authentication code is wrong, expired or already used"
ENABLED_CODE = "two_factor_enabled"
NOT_ENABLED_CODE = "two_factor_not_enabled"
NO_ENROLLMENT_CODE = "no_two_factor_enrollment"


# HKDF's `info` for the key TOTP secrets are sealed under, apart from every other use of
# SERVICE_TOKEN_SECRET.
SECRETS_PURPOSE = b"objectvision totp secrets v1"


@dataclass(frozen=True)
class TwoFactorTerms:
    """What every second-factor operation needs: the box secrets are sealed in, and the
    issuer name authenticator apps show beside the account's address."""

    sealer: SecretBox
    issuer: str

    @classmethod
    def from_secret(cls, service_token_secret: str, *, issuer: str) -> "TwoFactorTerms":
        return cls(
            sealer=SecretBox.derived(
                service_token_secret, purpose=SECRETS_PURPOSE, setting="SERVICE_TOKEN_SECRET"
            ),
            issuer=issuer,
        )


class RecoveryCodesMaker(Protocol):
    """`confirm_enrollment` and `regenerate_recovery_codes`: what makes a new set of codes."""

    async def __call__(
        self,
        *,
        session: AsyncSession,
        terms: "TwoFactorTerms",
        user: User,
        code: str,
        now: datetime,
    ) -> list[str]: ...


@dataclass(frozen=True)
class Enrollment:
    """A secret waiting for its first code: as text to type, and as a URI for a QR code."""

    secret: str
    otpauth_uri: str


async def start_enrollment(
    *, session: AsyncSession, terms: TwoFactorTerms, user: User, now: datetime
) -> Enrollment:
    """A new secret for `user`'s app, replacing any enrolment not confirmed yet. Nothing is
    asked at login until `confirm_enrollment` proves the app has it."""
    if user.two_factor_enabled_at is not None:
        raise FailedPrecondition(
            "two-factor authentication is on already; turn it off to enrol another app",
            code=ENABLED_CODE,
        )
    secret = pyotp.random_base32()
    factor = await _locked_factor(session, user.id)
    if factor is None:
        factor = TotpFactor(user_id=user.id, sealed_secret="")
        session.add(factor)
    factor.sealed_secret = terms.sealer.seal(secret)
    factor.created_at = now
    factor.confirmed_at = None
    factor.last_used_step = None
    await session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=terms.issuer)
    return Enrollment(secret=secret, otpauth_uri=uri)


async def confirm_enrollment(
    *, session: AsyncSession, terms: TwoFactorTerms, user: User, code: str, now: datetime
) -> list[str]:
    """Turn two-factor authentication on with the app's first code; returns the recovery
    codes, which exist in clear only in this answer. The owner is told
    (`user.two_factor_enabled`) in the same commit."""
    if user.two_factor_enabled_at is not None:
        raise FailedPrecondition("two-factor authentication is on already", code=ENABLED_CODE)
    factor = await _locked_factor(session, user.id)
    if factor is None:
        raise FailedPrecondition(
            "no authenticator app is being enrolled: start with a new secret",
            code=NO_ENROLLMENT_CODE,
        )
    step = _matching_step(terms, factor, code, now)
    if step is None:
        raise InvalidArgument(INVALID_CODE, code=INVALID_CODE_CODE)
    factor.confirmed_at = now
    factor.last_used_step = step
    user.two_factor_enabled_at = now
    user.updated_at = now
    codes = await _replace_recovery_codes(session, user.id, now)
    await outbox.add_two_factor_changed(
        session=session, user_id=user.id, event_type=TWO_FACTOR_ENABLED, occurred_at=now
    )
    await session.commit()
    return codes


async def check_login(
    *,
    session: AsyncSession,
    terms: TwoFactorTerms,
    user: User,
    code: str | None,
    now: datetime,
) -> None:
    """Let a login whose password was right go on, if the account's second factor agrees:
    nothing to check without one; UNAUTHENTICATED `second_factor_required` without a code,
    `invalid_second_factor` for a wrong one. The login commits what a right code uses up."""
    if user.two_factor_enabled_at is None:
        return
    if not code:
        raise SecondFactorRequired(SECOND_FACTOR_REQUIRED)
    if not await _accept(session, terms, user, code, now):
        raise Unauthenticated(INVALID_CODE, code=INVALID_CODE_CODE)


async def regenerate_recovery_codes(
    *, session: AsyncSession, terms: TwoFactorTerms, user: User, code: str, now: datetime
) -> list[str]:
    """New recovery codes for `user`, given a code; the earlier ones stop working."""
    await _prove(session, terms, user, code, now)
    codes = await _replace_recovery_codes(session, user.id, now)
    await session.commit()
    return codes


async def disable(
    *,
    session: AsyncSession,
    terms: TwoFactorTerms,
    user: User,
    code: str | None,
    method: str,
    now: datetime,
    end_sessions: RevokedAccessTokens | None = None,
) -> None:
    """Turn `user`'s second factor off: with a code when its owner asks (`code` given), or
    with none when an admin does for an owner who lost the app and the recovery codes. The
    owner is told (`user.two_factor_disabled`, naming `method`) in the same commit. With
    `end_sessions`, every session of the account ends in that commit too."""
    if code is None:
        _require_enabled(user)
    else:
        await _prove(session, terms, user, code, now)
    await session.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    user.two_factor_enabled_at = None
    user.updated_at = now
    if end_sessions is not None:
        await sessions.end_all_for_user(
            session=session, revoked=end_sessions, user_id=user.id, now=now
        )
    await outbox.add_two_factor_changed(
        session=session,
        user_id=user.id,
        event_type=TWO_FACTOR_DISABLED,
        method=method,
        occurred_at=now,
    )
    await session.commit()


async def _prove(
    session: AsyncSession, terms: TwoFactorTerms, user: User, code: str, now: datetime
) -> None:
    """The owner's proof for a change to the factor itself: it is on, and `code` is one of
    its codes (PermissionDenied otherwise, which the gateway counts as a wrong password)."""
    _require_enabled(user)
    if not await _accept(session, terms, user, code, now):
        raise PermissionDenied(INVALID_CODE, code=INVALID_CODE_CODE)


def _require_enabled(user: User) -> None:
    if user.two_factor_enabled_at is None:
        raise FailedPrecondition(
            "two-factor authentication is not on for this account", code=NOT_ENABLED_CODE
        )


async def _locked_factor(session: AsyncSession, user_id: uuid.UUID) -> TotpFactor | None:
    """The account's factor, locked: two codes checked at once cannot both take one step."""
    return await session.scalar(
        select(TotpFactor)
        .where(TotpFactor.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _accept(
    session: AsyncSession, terms: TwoFactorTerms, user: User, code: str, now: datetime
) -> bool:
    """Whether `code` is the app's code for now (its step is then used up) or an unused
    recovery code (then used up, and the owner told how many are left)."""
    factor = await _locked_factor(session, user.id)
    if factor is None or factor.confirmed_at is None:
        return False
    step = _matching_step(terms, factor, code, now)
    if step is not None:
        factor.last_used_step = step
        return True
    recovery = await session.scalar(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    )
    if recovery is None:
        return False
    recovery.used_at = now
    await session.flush()
    left = await session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    await outbox.add_two_factor_changed(
        session=session,
        user_id=user.id,
        event_type=RECOVERY_CODE_USED,
        recovery_codes_left=left or 0,
        occurred_at=now,
    )
    return True


def _matching_step(
    terms: TwoFactorTerms, factor: TotpFactor, code: str, now: datetime
) -> int | None:
    """The 30-second step whose code `code` is, within the drift allowed and after the last
    step used; None when it is none of them."""
    digits = "".join(code.split())
    if len(digits) != CODE_DIGITS or not digits.isdigit():
        return None
    try:
        secret = terms.sealer.open(factor.sealed_secret)
    except ValueError:
        # Sealed under another SERVICE_TOKEN_SECRET: no code can match until an admin turns
        # the factor off (ADR 0034, consequences).
        logger.error("a TOTP secret cannot be opened", extra={"user_id": str(factor.user_id)})
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if factor.last_used_step is not None and step <= factor.last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


async def _replace_recovery_codes(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> list[str]:
    """A fresh set of recovery codes for the account, ending every earlier one."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=_recovery_hash(code), created_at=now)
        for code in codes
    )
    return codes


def _new_recovery_code() -> str:
    digits = secrets.token_hex(RECOVERY_CODE_BYTES)
    return "-".join(
        digits[start : start + RECOVERY_CODE_GROUP]
        for start in range(0, len(digits), RECOVERY_CODE_GROUP)
    )


def _recovery_hash(code: str) -> str:
    """The hash a recovery code is found by, however it was typed (case, dashes, spaces)."""
    normalised = "".join(character for character in code.lower() if character.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()
