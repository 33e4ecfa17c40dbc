"""Bodies of the two-factor authentication routes (ADR 0034)."""

from typing import Self

import segno
from pydantic import Field

from gateway.schemas.auth import Password, SecondFactorCode
from gateway.schemas.base import ApiModel
from objectvision.v1 import auth_pb2


class TwoFactorPasswordIn(ApiModel):
    """Enrolling an app, or an admin turning another account's factor off: the caller's own
    password again."""

    current_password: Password


class TwoFactorCodeIn(ApiModel):
    code: SecondFactorCode


class TwoFactorConfirmationIn(ApiModel):
    """The password and a code (from the app, or a recovery code): what turning the factor
    off, or replacing the recovery codes, takes."""

    current_password: Password
    code: SecondFactorCode


class TwoFactorEnrollmentOut(ApiModel):
    """A secret for an authenticator app, waiting for its first code."""

    secret: str = Field(description="The TOTP secret (base32), to type into an app by hand.")
    otpauth_uri: str = Field(description="The otpauth:// URI apps read from a QR code.")
    qr_svg: str = Field(description="That URI as a QR code: an SVG data URI for an <img>.")

    @classmethod
    def from_proto(cls, enrollment: auth_pb2.TwoFactorEnrollment) -> Self:
        qr = segno.make(enrollment.otpauth_uri, error="m")
        return cls(
            secret=enrollment.secret,
            otpauth_uri=enrollment.otpauth_uri,
            qr_svg=qr.svg_data_uri(scale=4, border=2),
        )


class RecoveryCodesOut(ApiModel):
    recovery_codes: list[str] = Field(
        description="Ten single-use codes that stand in for the app: shown this once, so "
        "store them now. Earlier ones no longer work."
    )
