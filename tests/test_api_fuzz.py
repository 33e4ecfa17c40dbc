"""Schema-driven fuzzing of the running gateway, and property tests of the pure parsers that
stand between the internet and the services.

Part 1 runs schemathesis against the live `/openapi.json` of the session stack
(tests/conftest.py): every documented operation, three times — with a Bearer access token,
with an API key, and with no credentials — in positive and negative generation modes. The
checks: no 5xx, bodies match their response schema, statuses and content types are the
documented ones, and headers are documented. The anonymous run adds one check of our own:
every operation that is not public answers 401, whatever the request looks like. The authed
runs add schemathesis' `ignored_auth`, which re-sends a successful request without
credentials and with forged ones and expects a refusal.

The default run is a smoke pass kept short for `make test` (FAST_EXAMPLES per operation: at 10
it was the suite's three slowest tests, 11 to 16 s each); the `slow` variant (`make
test-slow`) runs FULL_EXAMPLES per operation.

Part 2 is Hypothesis over pure functions not already covered by the services' own property
tests (letterbox round trips and NMS invariants live in detection-service/tests): access
token parsing, request-id sanitising, the signed principal, X-Forwarded-For parsing,
filename sanitising and the gRPC-to-HTTP error mapping.
"""

import base64
import contextlib
import json
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from detection_service.images.uploads import MAX_FILENAME_CHARS, sanitize_filename
from gateway.auth.tokens import InvalidTokenError, KeySet, decode_access_token, token_key_id
from gateway.dependencies import forwarded_client_ip
from gateway.errors import GRPC_TO_HTTP, error_from_grpc
from objectvision.v1 import auth_pb2, common_pb2
from objectvision_common.errors import ERROR_CODE_TRAILER, RETRY_AFTER_TRAILER, Unauthenticated
from objectvision_common.identity import principal_from_metadata, principal_metadata
from objectvision_common.request_context import sanitize_request_id
from objectvision_devstack.api_users import fresh_network, network_address
from objectvision_devstack.stack import Stack

try:  # a dev dependency (`schemathesis>=4`); the property tests below run without it
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        ignored_auth,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
except ImportError:  # pragma: no cover - `make install` brings it
    schemathesis = None

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
FORGOT_PASSWORD = "/api/v1/auth/forgot-password"
RESET_PASSWORD = "/api/v1/auth/reset-password"
VERIFY_EMAIL = "/api/v1/auth/verify-email"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
PASSWORD = "correct horse battery"
# Operations anyone may call. /docs, /openapi.json and the console are outside the OpenAPI
# document (include_in_schema=False) and are public too; /ready and /metrics are on the
# gateway's metrics port only.
PUBLIC_OPERATIONS = frozenset(
    {
        ("GET", "/health"),
        ("POST", SIGNUP),
        ("POST", LOGIN),
        ("POST", REFRESH),
        ("POST", FORGOT_PASSWORD),
        ("POST", RESET_PASSWORD),
        ("POST", VERIFY_EMAIL),
        # A share link's token is the credential (ADR 0048), in the X-Share-Token header.
        ("GET", "/api/v1/shared"),
        ("GET", "/api/v1/shared/image"),
        ("GET", "/api/v1/shared/video"),
    }
)
FAST_EXAMPLES = 5
FULL_EXAMPLES = 200
# A full run is FULL_EXAMPLES cases of each of some fifty operations: minutes by design, past
# the suite's 300 s per test on a busy machine. pytest-timeout's signal then raised inside
# whichever case was running, and Hypothesis reported that case as flaky (it passed when
# replayed) or its data generation as inconsistent: a different operation each time (share
# links, evaluation, models), never a fault of theirs. It gets a bound of its own.
FULL_RUN_TIMEOUT_S = 1800
FULL_RUN = [pytest.mark.slow, pytest.mark.timeout(FULL_RUN_TIMEOUT_S)]
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CHECKS = (
    [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
    ]
    if schemathesis is not None
    else []
)
_HYPOTHESIS = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "suppress_health_check": list(HealthCheck),
}


# ---------------------------------------------------------------- part 1: the live gateway


@dataclass
class FuzzAccount:
    """One user the authed runs act as. Only logout consumes a session: it gets a fresh one."""

    gateway_url: str
    email: str
    user_id: str
    access_token: str
    refresh_token: str
    api_key: str

    def fresh_access_token(self) -> str:
        """A new session from the refresh token (no password hashing, so it is fast). The
        fuzzed `sessions/end-others` ends the spare session too: then it logs in again."""
        response = httpx.post(
            f"{self.gateway_url}{REFRESH}", json={"refresh_token": self.refresh_token}, timeout=30
        )
        if response.status_code == 401:
            response = httpx.post(
                f"{self.gateway_url}{LOGIN}",
                json={"email": self.email, "password": PASSWORD},
                headers=fresh_network(),
                timeout=30,
            )
        assert response.status_code == 200, response.text
        pair = response.json()
        self.refresh_token = pair["refresh_token"]
        return str(pair["access_token"])


@pytest.fixture(scope="module")
def fuzz_account(stack: Stack) -> FuzzAccount:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        email = f"fuzz-{uuid.uuid4().hex}@example.com"
        signed_up = client.post(
            SIGNUP,
            json={"email": email, "password": PASSWORD, "name": "Fuzz"},
            headers=fresh_network(),
        )
        assert signed_up.status_code == 202, signed_up.text
        # The session the authed runs use; logout in those runs gets its own (see above).
        tokens = client.post(
            LOGIN,
            json={"email": email, "password": PASSWORD},
            headers=fresh_network(),
        ).json()
        # A second login whose refresh token mints the throwaway sessions for logout.
        spare = client.post(
            LOGIN,
            json={"email": email, "password": PASSWORD},
            headers=fresh_network(),
        ).json()
        key = client.post(
            "/api/v1/users/me/api-keys",
            json={"name": "fuzz"},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert key.status_code == 201, key.text
        # Sign-up names no account (it answers alike for a taken address): ask who we are.
        me = client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text
    return FuzzAccount(
        gateway_url=stack.gateway_url,
        email=email,
        user_id=me.json()["id"],
        access_token=tokens["access_token"],
        refresh_token=spare["refresh_token"],
        api_key=key.json()["secret"],
    )


@pytest.fixture(scope="module")
def gateway_schema(stack: Stack) -> Any:
    if schemathesis is None:
        pytest.skip("schemathesis is not installed (dev dependency schemathesis>=4)")
    """The live document; base URL and all requests go to the running gateway."""
    return schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")


def _operation(case: Any) -> tuple[str, str]:
    return case.method.upper(), case.operation.path


def _without_credentials(case: Any) -> None:
    """Drop credential headers schemathesis generated (a junk Bearer would beat our key)."""
    if case.headers:
        for name in list(case.headers):
            if name.lower() in ("authorization", "x-api-key"):
                del case.headers[name]


def refuses_anonymous_callers(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schemathesis check: every operation outside PUBLIC_OPERATIONS answers 401 without
    valid credentials (schemathesis may have generated junk ones: they must not work either).

    The only other statuses allowed are the ones decided before any route code runs: a body
    over the size limit (413), a body that does not parse (400, or 422 `malformed_json`), and
    a negative path parameter that matches no route (404/405 from the router).
    """
    if _operation(case) in PUBLIC_OPERATIONS:
        return None
    status = response.status_code
    if 200 <= status < 300:
        raise AssertionError(f"{_operation(case)} answered {status} without credentials")
    if status == 401:
        if "www-authenticate" not in {name.lower() for name in response.headers}:
            raise AssertionError("a 401 without a WWW-Authenticate challenge")
        return None
    code = _error_code(response)
    if status in (400, 413) or (status == 422 and code == "malformed_json"):
        return None
    if status in (404, 405) and _negative_path(case):
        return None
    raise AssertionError(f"{_operation(case)} answered {status} ({code}) instead of 401")


def _negative_path(case: Any) -> bool:
    try:
        from schemathesis.core.parameters import ParameterLocation

        return bool(case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH))
    except (ImportError, AttributeError):  # pragma: no cover - another schemathesis layout
        return case.meta is not None


def _error_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _strategy(operation: Any) -> Any:
    """Positive and negative cases of one operation (negative where it can be generated)."""
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    # An operation with nothing to break has no negative cases.
    with contextlib.suppress(Exception):
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def _fuzz(schema: Any, *, examples: int, call: Callable[[Any], None], include_public: bool) -> None:
    """Every operation of the live document, `examples` cases each; all failures reported
    together (each with its curl line from schemathesis), so one run shows everything."""
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not include_public and (operation.method.upper(), operation.path) in PUBLIC_OPERATIONS:
            continue
        operations += 1

        @given(case=_strategy(operation))
        @settings(max_examples=examples, **_HYPOTHESIS)
        def run(case: Any) -> None:
            call(case)

        try:
            run()
        except Exception as exc:
            # A flaky case (Hypothesis' FlakyFailure, an exception group) says only that it
            # failed once; what failed is in its sub-exceptions: schemathesis' check and curl.
            inner = [f"{type(error).__name__}: {error}" for error in getattr(exc, "exceptions", ())]
            failures.append(
                "\n".join([f"{operation.method.upper()} {operation.path}:", str(exc), *inner])
            )
    assert operations >= 15, f"only {operations} operations in the live document"
    assert not failures, "\n\n".join(failures)


def _call_with_bearer(case: Any, account: FuzzAccount) -> None:
    _without_credentials(case)
    token = (
        account.fresh_access_token()
        if _operation(case) == ("POST", LOGOUT)
        else account.access_token
    )
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": network_address()},
        checks=[*CHECKS, ignored_auth],
        timeout=60,
    )


def _call_with_api_key(case: Any, account: FuzzAccount) -> None:
    _without_credentials(case)
    case.call_and_validate(
        headers={"X-API-Key": account.api_key, "X-Forwarded-For": network_address()},
        checks=[*CHECKS, ignored_auth],
        timeout=60,
    )


def _call_anonymously(case: Any) -> None:
    case.call_and_validate(
        headers=fresh_network(),
        checks=[*CHECKS, refuses_anonymous_callers],
        timeout=60,
    )


@pytest.mark.parametrize("examples", [FAST_EXAMPLES, pytest.param(FULL_EXAMPLES, marks=FULL_RUN)])
def test_fuzz_with_a_bearer_token(
    gateway_schema: Any, fuzz_account: FuzzAccount, examples: int
) -> None:
    _fuzz(
        gateway_schema,
        examples=examples,
        call=lambda case: _call_with_bearer(case, fuzz_account),
        include_public=False,
    )


@pytest.mark.parametrize("examples", [FAST_EXAMPLES, pytest.param(FULL_EXAMPLES, marks=FULL_RUN)])
def test_fuzz_with_an_api_key(
    gateway_schema: Any, fuzz_account: FuzzAccount, examples: int
) -> None:
    _fuzz(
        gateway_schema,
        examples=examples,
        call=lambda case: _call_with_api_key(case, fuzz_account),
        include_public=False,
    )


@pytest.mark.parametrize("examples", [FAST_EXAMPLES, pytest.param(FULL_EXAMPLES, marks=FULL_RUN)])
def test_fuzz_without_credentials(gateway_schema: Any, examples: int) -> None:
    _fuzz(gateway_schema, examples=examples, call=_call_anonymously, include_public=True)


def test_only_the_public_operations_are_documented_without_security(stack: Stack) -> None:
    """The document agrees with the runtime check: a new route that forgets its auth
    dependency shows up here as an operation without `security`."""
    document = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=30).json()
    unsecured = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if not operation.get("security")
    }
    assert unsecured == PUBLIC_OPERATIONS


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/docs"])
def test_the_public_surface_outside_the_document_needs_no_credentials(
    stack: Stack, path: str
) -> None:
    response = httpx.get(f"{stack.gateway_url}{path}", timeout=30)
    assert response.status_code == 200, (path, response.status_code)


@pytest.mark.parametrize("path", ["/ready", "/metrics"])
def test_readiness_and_metrics_answer_on_the_metrics_port_not_the_public_one(
    stack: Stack, path: str
) -> None:
    assert httpx.get(f"{stack.gateway_url}{path}", timeout=30).status_code == 404
    response = httpx.get(f"{stack.gateway_metrics_url}{path}", timeout=30)
    assert response.status_code in (200, 503), (path, response.status_code)


@pytest.mark.parametrize(
    "raw",
    [
        "é".encode("latin-1"),  # Starlette reads header bytes as latin-1: 'é'.isalnum()
        "²".encode("latin-1"),
        "ａｂｃ".encode(),  # noqa: RUF001 - fullwidth letters on purpose
        b"a" * 129,
    ],
)
def test_a_non_ascii_request_id_never_breaks_an_upstream_call(
    stack: Stack, fuzz_account: FuzzAccount, raw: bytes
) -> None:
    """Regression: a Unicode-alphanumeric X-Request-ID was accepted, then refused by gRPC as
    metadata, so every authenticated route answered 500 (common/.../request_context.py)."""
    response = httpx.get(
        f"{stack.gateway_url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {fuzz_account.access_token}", "X-Request-ID": raw},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert SAFE_REQUEST_ID.fullmatch(response.headers["x-request-id"])


# ---------------------------------------------------------------- part 2: pure properties


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_SIGNING_KEY = Ed25519PrivateKey.generate()
_KID = "fuzz-key"
_ISSUER = "objectvision-auth"
_AUDIENCE = "objectvision"
_KEY_SET = KeySet.from_jwks(
    auth_pb2.Jwks(
        keys=[
            auth_pb2.JsonWebKey(
                kty="OKP",
                crv="Ed25519",
                x=_b64url(
                    _SIGNING_KEY.public_key().public_bytes(
                        serialization.Encoding.Raw, serialization.PublicFormat.Raw
                    )
                ),
                kid=_KID,
                alg="EdDSA",
                use="sig",
            )
        ],
        issuer=_ISSUER,
        audience=_AUDIENCE,
    )
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
claim_values = st.one_of(
    json_values,
    st.just(_ISSUER),
    st.just(_AUDIENCE),
    st.just("access"),
    st.uuids().map(str),
    st.integers(0, 2 * int(time.time())),
)
header_dicts = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["EdDSA", "none", "None", "HS256", "RS256", "ES256", ""])
        | json_values,
        "kid": st.just(_KID) | json_values,
        "typ": st.just("JWT") | json_values,
    },
)


def _segment(value: Any) -> str:
    return _b64url(json.dumps(value).encode())


jwt_shaped = st.builds(
    lambda header, payload, signature: (
        f"{_segment(header)}.{_segment(payload)}.{_b64url(signature)}"
    ),
    header_dicts,
    st.dictionaries(st.text(max_size=5), claim_values, max_size=10),
    st.binary(max_size=80),
)
token_texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.=", max_size=300),
    jwt_shaped,
)


@given(token=token_texts)
@settings(max_examples=300, **_HYPOTHESIS)
@example(token="")
@example(token="..")
@example(token="e30.e30.")
def test_junk_tokens_are_refused_and_never_crash_the_parser(token: str) -> None:
    """Whatever arrives after `Bearer `: InvalidTokenError (a 401), never another exception
    (a 500) and never claims — without the private key nothing is genuine."""
    with pytest.raises(InvalidTokenError):
        decode_access_token(token, _KEY_SET)
    with contextlib.suppress(InvalidTokenError):
        token_key_id(token)


@given(
    claims=st.fixed_dictionaries(
        {},
        optional={
            name: claim_values
            for name in (
                *("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "typ", "admin", "sid"),
                "email_verified",
            )
        },
    )
)
@settings(max_examples=300, **_HYPOTHESIS)
def test_genuine_signatures_over_random_claims_pass_only_when_every_rule_holds(
    claims: dict[str, Any],
) -> None:
    """Signed with the real key, random claims are accepted exactly when ADR 0002's rules
    hold; otherwise InvalidTokenError, never another exception."""
    try:
        token = jwt.encode(claims, _SIGNING_KEY, algorithm="EdDSA", headers={"kid": _KID})
    except TypeError:  # PyJWT itself refuses to sign e.g. a non-string `iss`
        assume(False)
    now = time.time()
    valid = (
        claims.get("iss") == _ISSUER
        and claims.get("aud") == _AUDIENCE
        and claims.get("typ") == "access"
        and isinstance(claims.get("jti"), str)
        and bool(claims.get("jti"))
        and isinstance(claims.get("admin", False), bool)
        and isinstance(claims.get("email_verified", False), bool)
        and _is_uuid(claims.get("sub"))
        and _is_uuid(claims.get("sid"))
        and all(_is_number(claims.get(name)) for name in ("iat", "nbf", "exp"))
        and claims["exp"] > now + 10
        and claims["nbf"] < now - 10
        and claims["iat"] < now - 10
    )
    if valid:
        decoded = decode_access_token(token, _KEY_SET)
        assert decoded.user_id == str(uuid.UUID(claims["sub"]))
        return
    clearly_invalid = (
        claims.get("iss") != _ISSUER
        or claims.get("aud") != _AUDIENCE
        or claims.get("typ") != "access"
        or not _is_uuid(claims.get("sub"))
        or not _is_uuid(claims.get("sid"))
        or not isinstance(claims.get("admin", False), bool)
        or not isinstance(claims.get("email_verified", False), bool)
        or any(name not in claims for name in ("iat", "nbf", "exp", "jti"))
    )
    if clearly_invalid:
        with pytest.raises(InvalidTokenError):
            decode_access_token(token, _KEY_SET)
    else:  # borderline times: either answer is fine, a crash is not
        with contextlib.suppress(InvalidTokenError):
            decode_access_token(token, _KEY_SET)


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@given(candidate=st.none() | st.text(max_size=200))
@settings(max_examples=500, **_HYPOTHESIS)
@example(candidate="é")
@example(candidate="²")
@example(candidate="ǅ")
@example(candidate="x" * 128)
@example(candidate="trace-42.a:b_c")
def test_request_ids_are_kept_only_when_safe(candidate: str | None) -> None:
    """The id lands in log lines, a response header and gRPC metadata: printable ASCII only."""
    sanitized = sanitize_request_id(candidate)
    assert SAFE_REQUEST_ID.fullmatch(sanitized)
    if candidate is not None and SAFE_REQUEST_ID.fullmatch(candidate):
        assert sanitized == candidate
    else:
        assert sanitized != candidate
    assert sanitize_request_id(sanitized) == sanitized


_SECRET = "fuzz-service-secret"
ascii_metadata_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))
principals = st.builds(
    common_pb2.Principal,
    user_id=st.uuids().map(str),
    is_admin=st.booleans(),
    auth_method=st.sampled_from(["jwt", "api_key", "service"]),
    credential_id=st.text(alphabet=string.hexdigits, max_size=32),
)


@given(
    metadata=st.lists(
        st.tuples(
            st.sampled_from(["x-principal", "x-principal-signature", "x-request-id", "other"]),
            ascii_metadata_text,
        ),
        max_size=4,
    )
)
@settings(max_examples=300, **_HYPOTHESIS)
def test_unsigned_principals_are_unauthenticated(metadata: list[tuple[str, str]]) -> None:
    with pytest.raises(Unauthenticated):
        principal_from_metadata(metadata, secret=_SECRET)


@given(principal=principals, flip=st.integers(min_value=0))
@settings(max_examples=200, **_HYPOTHESIS)
def test_a_signed_principal_round_trips_and_any_change_is_refused(
    principal: common_pb2.Principal, flip: int
) -> None:
    metadata = principal_metadata(principal, secret=_SECRET)
    assert principal_from_metadata(metadata, secret=_SECRET) == principal
    with pytest.raises(Unauthenticated):
        principal_from_metadata(metadata, secret="another-secret")
    (payload_key, payload), (signature_key, signature) = metadata
    position = flip % len(payload)
    replacement = "A" if payload[position] != "A" else "B"
    tampered = payload[:position] + replacement + payload[position + 1 :]
    with pytest.raises(Unauthenticated):
        principal_from_metadata(
            ((payload_key, tampered), (signature_key, signature)), secret=_SECRET
        )


@given(header=st.none() | st.text(max_size=120))
@settings(max_examples=300, **_HYPOTHESIS)
@example(header="10.0.0.1, 203.0.113.7")
@example(header="203.0.113.7, not-an-ip")
def test_forwarded_for_yields_the_last_entry_or_nothing(header: str | None) -> None:
    import ipaddress

    parsed = forwarded_client_ip(header)
    if parsed is None:
        return
    assert header is not None
    assert ipaddress.ip_address(parsed) == ipaddress.ip_address(header.split(",")[-1].strip())


@given(
    name=st.one_of(
        st.text(max_size=400),
        st.lists(
            st.sampled_from(["..", ".", "/", "\\", "etc", "passwd.jpg", " ", "\x00", "\r\n"])
        ).map("".join),
    )
)
@settings(max_examples=500, **_HYPOTHESIS)
@example(name="../../etc/passwd.jpg")
@example(name="..\\..\\windows\\win.ini")
@example(name="/etc/passwd")
@example(name="....//....//x")
def test_sanitized_filenames_are_one_printable_component(name: str) -> None:
    """Display only, but still: never a path, never hidden, never a control character."""
    shown = sanitize_filename(name)
    assert "/" not in shown and "\\" not in shown
    assert not shown.startswith(".")
    assert shown not in (".", "..")
    assert len(shown) <= MAX_FILENAME_CHARS
    assert all(char.isprintable() for char in shown)


status_codes = st.sampled_from(list(grpc.StatusCode))


@given(
    status=status_codes,
    details=st.none() | st.text(max_size=80),
    code=st.none() | st.text(max_size=30),
    retry_after=st.none() | st.text(max_size=10),
)
@settings(max_examples=500, **_HYPOTHESIS)
def test_any_upstream_failure_maps_to_a_documented_error(
    status: grpc.StatusCode, details: str | None, code: str | None, retry_after: str | None
) -> None:
    trailers: list[tuple[str, str]] = []
    if code is not None:
        trailers.append((ERROR_CODE_TRAILER, code))
    if retry_after is not None:
        trailers.append((RETRY_AFTER_TRAILER, retry_after))
    error = error_from_grpc(status, details, trailers)
    assert error.status_code in {*GRPC_TO_HTTP.values(), 413, 415, 500}
    assert error.code
    if not code and details and len(details) > 3:
        # Without a domain error-code the details are internals: never shown.
        assert details not in error.message
    if "Retry-After" in error.headers:
        assert error.headers["Retry-After"].isascii()
        assert error.headers["Retry-After"].isdigit()
    if error.status_code == 401:
        assert error.headers["WWW-Authenticate"] == "Bearer"
