"""Mutual TLS between services, with real certificates and real handshakes on loopback.

A CA, a server certificate (SANs localhost and 127.0.0.1) and client certificates are made
here with `cryptography`; a second, unrelated CA signs the certificates nobody should accept.
"""

import asyncio
import datetime
import ipaddress
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from objectvision_common.grpc_client import insecure_channel, service_channel
from objectvision_common.grpc_server import GrpcApp, ServiceRegistration
from objectvision_common.peer_policy import PeerGrant, PeerPolicy
from objectvision_common.settings import CommonSettings, GrpcServiceSettings
from objectvision_common.tls import TlsFiles

SERVICE = "test.Peer"
OTHER_SERVICE = "test.Other"
# The "Held" call waits for the test: it stays in flight across a certificate rotation.
HELD_STARTED = asyncio.Event()
HELD_RELEASE = asyncio.Event()


async def _who_am_i(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    """The common name of the client certificate the handshake verified."""
    (name,) = context.auth_context()["x509_common_name"]
    return name


async def _held(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    HELD_STARTED.set()
    await HELD_RELEASE.wait()
    return await _who_am_i(request, context)


def _add(_servicer: object, server: grpc.aio.Server) -> None:
    handlers = {
        "WhoAmI": grpc.unary_unary_rpc_method_handler(_who_am_i),
        "Held": grpc.unary_unary_rpc_method_handler(_held),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def _add_other(_servicer: object, server: grpc.aio.Server) -> None:
    """A second service on the same server, for lists that name a whole service."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(_who_am_i) for name in ("First", "Second")
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(OTHER_SERVICE, handlers),)
    )


# ---- a small PKI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(
        self, name: str, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A leaf for server and client auth, like the cert-manager Certificates in k8s/."""
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = _builder(_name(name), self.certificate.subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage(usages), critical=False
        )
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _replace(path: Path, content: bytes) -> None:
    """Write beside, then rename over: the way a mounted Secret changes (atomically)."""
    staging = path.with_name(f".{path.name}.new")
    staging.write_bytes(content)
    os.replace(staging, path)


def write_files(
    directory: Path,
    authority: Authority,
    leaf: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    trusted: Authority,
) -> TlsFiles:
    """tls.crt / tls.key / ca.crt as cert-manager lays them out: `leaf` from `authority`,
    `trusted` as the CA that peers must come from."""
    key, certificate = leaf
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
    chain = certificate.public_bytes(serialization.Encoding.PEM)
    assert certificate.issuer == authority.certificate.subject
    _replace(files.cert_file, chain)
    _replace(
        files.key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _replace(files.ca_file, trusted.pem())
    return files


@dataclass(frozen=True)
class Pki:
    ca: Authority
    other_ca: Authority
    server: TlsFiles
    client: TlsFiles
    # A client whose certificate the other CA signed (it trusts our CA, so only its own
    # certificate can be the reason it is refused).
    stranger: TlsFiles
    # A client that trusts only the other CA (so it must refuse our server).
    distrustful: TlsFiles
    root: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca, other_ca = Authority.create("objectvision-ca"), Authority.create("unrelated-ca")
    server = ca.issue("server", dns=("localhost",), ips=("127.0.0.1",))
    return Pki(
        ca=ca,
        other_ca=other_ca,
        server=write_files(root / "server", ca, server, ca),
        client=write_files(root / "client", ca, ca.issue("gateway"), ca),
        stranger=write_files(root / "stranger", other_ca, other_ca.issue("stranger"), ca),
        distrustful=write_files(root / "distrustful", ca, ca.issue("gateway"), other_ca),
        root=root,
    )


@pytest.fixture(scope="module")
async def server(pki: Pki) -> AsyncIterator[GrpcApp]:
    app = GrpcApp(
        [ServiceRegistration(SERVICE, object(), _add)],
        host="127.0.0.1",
        port=0,
        tls=pki.server,
        health_port=0,
    )
    await app.start()
    yield app
    await app.stop()


def _target(app: GrpcApp) -> str:
    return f"127.0.0.1:{app.bound_port}"


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    return reply.status


async def _who_am_i_over(channel: grpc.aio.Channel, method: str = f"/{SERVICE}/WhoAmI") -> bytes:
    return await channel.unary_unary(method)(b"", timeout=5)


async def _refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _health(channel)
    return raised.value.code()


# ---- who gets in ---------------------------------------------------------------------------


async def test_a_client_with_a_certificate_from_the_ca_is_served(pki, server) -> None:
    async with service_channel(_target(server), pki.client) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        # The server knows which service called: the verified certificate's name.
        assert await _who_am_i_over(channel) == b"gateway"


async def test_the_server_certificate_matches_the_host_name_too(pki, server) -> None:
    async with service_channel(f"localhost:{server.bound_port}", pki.client) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_a_client_without_a_certificate_is_refused(pki, server) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.pem())
    channel = grpc.aio.secure_channel(_target(server), credentials)
    assert await _refused(channel) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_certificate_from_another_ca_is_refused(pki, server) -> None:
    assert await _refused(service_channel(_target(server), pki.stranger)) == (
        grpc.StatusCode.UNAVAILABLE
    )


async def test_a_plaintext_client_is_refused(server) -> None:
    assert await _refused(insecure_channel(_target(server))) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_refuses_a_server_its_ca_did_not_sign(pki, server) -> None:
    assert await _refused(service_channel(_target(server), pki.distrustful)) == (
        grpc.StatusCode.UNAVAILABLE
    )


async def test_the_health_port_answers_plaintext_probes_and_serves_nothing_else(
    server,
) -> None:
    assert server.bound_health_port not in (0, server.bound_port)
    async with insecure_channel(f"127.0.0.1:{server.bound_health_port}") as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _who_am_i_over(channel)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_the_health_port_reports_not_serving_once_shutdown_starts(pki) -> None:
    app = GrpcApp(
        [ServiceRegistration(SERVICE, object(), _add)],
        host="127.0.0.1",
        port=0,
        tls=pki.server,
        health_port=0,
    )
    await app.start()
    async with insecure_channel(f"127.0.0.1:{app.bound_health_port}") as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        assert app.health_servicer is not None
        await app.health_servicer.enter_graceful_shutdown()
        assert await _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    await app.stop()


# ---- rotation ------------------------------------------------------------------------------


@pytest.fixture
def rotating(pki: Pki, tmp_path: Path) -> Iterator[tuple[TlsFiles, Path]]:
    """A copy of the server's files that one test may replace."""
    files = TlsFiles(tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt")
    for source, target in zip(
        (pki.server.cert_file, pki.server.key_file, pki.server.ca_file),
        (files.cert_file, files.key_file, files.ca_file),
        strict=True,
    ):
        target.write_bytes(source.read_bytes())
    yield files, tmp_path


async def test_a_server_takes_replaced_files_on_new_connections(pki, rotating) -> None:
    """The fetcher runs at each handshake: after the Secret changes (here: a new CA, as in a CA
    rotation), new connections get the new certificate and the new client CA, no restart."""
    files, directory = rotating
    app = GrpcApp([ServiceRegistration(SERVICE, object(), _add)], "127.0.0.1", 0, tls=files)
    await app.start()
    new_ca = Authority.create("objectvision-ca-2")
    new_client = write_files(directory / "new-client", new_ca, new_ca.issue("gateway"), new_ca)
    try:
        async with service_channel(_target(app), pki.client) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        assert await _refused(service_channel(_target(app), new_client)) == (
            grpc.StatusCode.UNAVAILABLE
        )

        server_leaf = new_ca.issue("server", dns=("localhost",), ips=("127.0.0.1",))
        write_files(directory, new_ca, server_leaf, new_ca)

        async with service_channel(_target(app), new_client) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        assert await _refused(service_channel(_target(app), pki.client)) == (
            grpc.StatusCode.UNAVAILABLE
        )
    finally:
        await app.stop()


async def test_a_half_replaced_set_keeps_the_last_good_certificate(pki, rotating) -> None:
    """A key that does not match the certificate (a rotation caught half-way) is not used."""
    files, _ = rotating
    app = GrpcApp([ServiceRegistration(SERVICE, object(), _add)], "127.0.0.1", 0, tls=files)
    await app.start()
    try:
        unrelated_key, _ = pki.ca.issue("unrelated")
        _replace(
            files.key_file,
            unrelated_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        async with service_channel(_target(app), pki.client) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await app.stop()


async def test_a_client_channel_presents_replaced_files_on_the_next_call(pki, server) -> None:
    """Stubs are built once per channel; after rotation the same channel object presents the
    new certificate (a new connection underneath)."""
    directory = pki.root / "rotating-client"
    files = write_files(directory, pki.ca, pki.ca.issue("client-before"), pki.ca)
    channel = service_channel(_target(server), files)
    who_am_i = channel.unary_unary(f"/{SERVICE}/WhoAmI")
    try:
        assert await who_am_i(b"", timeout=5) == b"client-before"
        write_files(directory, pki.ca, pki.ca.issue("client-after"), pki.ca)
        assert await who_am_i(b"", timeout=5) == b"client-after"
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channel.close()


@pytest.fixture
def held_gate() -> Iterator[None]:
    HELD_STARTED.clear()
    HELD_RELEASE.clear()
    yield
    HELD_RELEASE.set()


async def test_a_call_in_flight_during_a_rotation_finishes_on_the_old_connection(
    pki, server, held_gate
) -> None:
    directory = pki.root / "rotating-client-in-flight"
    files = write_files(directory, pki.ca, pki.ca.issue("client-before"), pki.ca)
    channel = service_channel(_target(server), files)
    try:
        held = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Held")(b"", timeout=30))
        await HELD_STARTED.wait()
        write_files(directory, pki.ca, pki.ca.issue("client-after"), pki.ca)
        assert await _who_am_i_over(channel) == b"client-after"
        assert not held.done()
        HELD_RELEASE.set()
        assert await held == b"client-before"
    finally:
        await channel.close()


async def test_closing_a_rotated_channel_ends_the_calls_left_on_the_old_connection(
    pki, server, held_gate
) -> None:
    directory = pki.root / "rotating-client-closed"
    files = write_files(directory, pki.ca, pki.ca.issue("client-before"), pki.ca)
    channel = service_channel(_target(server), files)
    held = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Held")(b"", timeout=30))
    await HELD_STARTED.wait()
    write_files(directory, pki.ca, pki.ca.issue("client-after"), pki.ca)
    assert await _who_am_i_over(channel) == b"client-after"
    await channel.close(0)
    with pytest.raises(asyncio.CancelledError):
        await held


async def test_a_service_without_usable_tls_files_does_not_start(pki, tmp_path) -> None:
    missing = TlsFiles(tmp_path / "tls.crt", pki.server.key_file, pki.server.ca_file)
    app = GrpcApp([ServiceRegistration(SERVICE, object(), _add)], "127.0.0.1", 0, tls=missing)
    with pytest.raises(OSError):
        await app.start()


# ---- settings ------------------------------------------------------------------------------


def _with_tls_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_TLS_CERT_FILE", "/tls/tls.crt")
    monkeypatch.setenv("GRPC_TLS_KEY_FILE", "/tls/tls.key")
    monkeypatch.setenv("GRPC_TLS_CA_FILE", "/tls/ca.crt")


@pytest.mark.parametrize(
    "given",
    [
        {"GRPC_TLS_CERT_FILE": "/tls/tls.crt"},
        {"GRPC_TLS_CERT_FILE": "/tls/tls.crt", "GRPC_TLS_KEY_FILE": "/tls/tls.key"},
        {"GRPC_TLS_CA_FILE": "/tls/ca.crt", "GRPC_TLS_KEY_FILE": ""},
    ],
    ids=["cert only", "no CA", "CA only"],
)
def test_settings_refuse_a_partial_tls_configuration(given, monkeypatch) -> None:
    for name in ("GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE and"):
        CommonSettings(_env_file=None)


def test_settings_give_tls_files_for_all_three_and_plaintext_for_none(monkeypatch) -> None:
    for name in ("GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CA_FILE"):
        monkeypatch.setenv(name, "")
    assert CommonSettings(_env_file=None).grpc_tls is None
    _with_tls_files(monkeypatch)
    assert CommonSettings(_env_file=None).grpc_tls == TlsFiles(
        Path("/tls/tls.crt"), Path("/tls/tls.key"), Path("/tls/ca.crt")
    )


# ---- which services may call ---------------------------------------------------------------


@pytest.fixture(scope="module")
def notifier(pki: Pki) -> TlsFiles:
    """A second service's client certificate, from the same CA as the gateway's."""
    root = pki.root / "notification-service"
    return write_files(root, pki.ca, pki.ca.issue("notification-service"), pki.ca)


@asynccontextmanager
async def _serving(pki: Pki, allowed_peers: str) -> AsyncIterator[GrpcApp]:
    """test.Peer and test.Other behind mutual TLS, serving GRPC_ALLOWED_PEERS=allowed_peers."""
    app = GrpcApp(
        [
            ServiceRegistration(SERVICE, object(), _add),
            ServiceRegistration(OTHER_SERVICE, object(), _add_other),
        ],
        host="127.0.0.1",
        port=0,
        tls=pki.server,
        allowed_peers=PeerPolicy.parse(allowed_peers),
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def _refusal(channel: grpc.aio.Channel, method: str) -> str:
    """The details of a `peer_not_allowed` refusal of `method`; fails on any other outcome."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _who_am_i_over(channel, method)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(refused.value.trailing_metadata() or ())["error-code"] == "peer_not_allowed"
    return refused.value.details() or ""


async def test_a_service_serves_only_the_peers_it_names(pki) -> None:
    """GRPC_ALLOWED_PEERS: a certificate from the CA whose name is not listed is refused
    (PERMISSION_DENIED `peer_not_allowed`); health stays open to it, as to probes."""
    intruder = write_files(pki.root / "intruder", pki.ca, pki.ca.issue("intruder"), pki.ca)
    async with _serving(pki, "gateway") as app:
        async with service_channel(_target(app), pki.client) as channel:
            assert await _who_am_i_over(channel) == b"gateway"
        async with service_channel(_target(app), intruder) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
            details = await _refusal(channel, f"/{SERVICE}/WhoAmI")
    assert details == "this service does not serve intruder"


async def test_a_peer_listed_with_one_method_is_refused_the_others(pki, notifier) -> None:
    """`name=method` serves that method alone; the refusal names the caller and the method,
    not who else is served. A bare name beside it still reaches every method."""
    async with _serving(pki, f"gateway,notification-service=/{SERVICE}/WhoAmI") as app:
        async with service_channel(_target(app), notifier) as channel:
            assert await _who_am_i_over(channel) == b"notification-service"
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
            same_service = await _refusal(channel, f"/{SERVICE}/Held")
            other_service = await _refusal(channel, f"/{OTHER_SERVICE}/First")
        async with service_channel(_target(app), pki.client) as channel:
            for method in (f"/{SERVICE}/WhoAmI", f"/{OTHER_SERVICE}/First"):
                assert await _who_am_i_over(channel, method) == b"gateway"
    assert same_service == f"this service does not serve notification-service on /{SERVICE}/Held"
    assert other_service.endswith(f"on /{OTHER_SERVICE}/First")
    assert "gateway" not in same_service + other_service


async def test_a_service_wildcard_serves_every_method_of_that_service_only(pki, notifier) -> None:
    async with (
        _serving(pki, f"notification-service=/{OTHER_SERVICE}/*") as app,
        service_channel(_target(app), notifier) as channel,
    ):
        for method in ("First", "Second"):
            served = await _who_am_i_over(channel, f"/{OTHER_SERVICE}/{method}")
            assert served == b"notification-service"
        await _refusal(channel, f"/{SERVICE}/WhoAmI")


async def test_a_list_naming_a_service_the_server_lacks_does_not_start(pki) -> None:
    """A list meant for another service (or a misspelt package) would refuse its peer on
    every call: the server refuses to start instead, saying which setting is wrong."""
    with pytest.raises(ValueError, match=r"GRPC_ALLOWED_PEERS names methods of test\.Missing,"):
        async with _serving(pki, "gateway=/test.Missing/*|/test.Peer/WhoAmI"):
            pass


def test_a_peer_allowlist_is_read_from_a_list_and_needs_mutual_tls(monkeypatch) -> None:
    for name in ("GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CA_FILE"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("GRPC_ALLOWED_PEERS", "gateway, notification-service,")
    with pytest.raises(ValidationError, match="GRPC_ALLOWED_PEERS names client certificates"):
        GrpcServiceSettings(_env_file=None)
    _with_tls_files(monkeypatch)
    policy = GrpcServiceSettings(_env_file=None).grpc_allowed_peers
    assert dict(policy.grants) == {"gateway": None, "notification-service": None}


def test_a_per_method_list_is_parsed_once_when_the_settings_load(monkeypatch) -> None:
    """As the prod overlay writes it: a folded YAML scalar, so spaces after each separator."""
    _with_tls_files(monkeypatch)
    monkeypatch.setenv(
        "GRPC_ALLOWED_PEERS",
        "gateway=/objectvision.v1.AuthService/* | /objectvision.v1.DetectionService/GetJob,"
        " notification-service=/objectvision.v1.AuthService/GetUser|\n"
        " /objectvision.v1.AuthService/GetSettings",
    )
    policy = GrpcServiceSettings(_env_file=None).grpc_allowed_peers
    assert dict(policy.grants) == {
        "gateway": PeerGrant(
            methods=frozenset({"/objectvision.v1.DetectionService/GetJob"}),
            services=frozenset({"objectvision.v1.AuthService"}),
        ),
        "notification-service": PeerGrant(
            methods=frozenset(
                {"/objectvision.v1.AuthService/GetUser", "/objectvision.v1.AuthService/GetSettings"}
            )
        ),
    }
    assert policy.allows("gateway", "/objectvision.v1.AuthService/Login")
    assert not policy.allows("notification-service", "/objectvision.v1.AuthService/Login")
    assert not policy.allows("stranger", "/objectvision.v1.AuthService/GetUser")
    assert PeerPolicy().allows("stranger", "/objectvision.v1.AuthService/Login")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("notification-service=", "no methods after '='"),
        ("=/objectvision.v1.AuthService/GetUser", "'' is not a certificate common name"),
        ("gateway notification-service", "is not a certificate common name"),
        ("gateway=objectvision.v1.AuthService/GetUser", "is not a full method name"),
        ("gateway=/objectvision.v1.AuthService/", "is not a full method name"),
        ("gateway=/objectvision.v1.AuthService/Get*", "is not a full method name"),
        ("gateway=/*", "is not a full method name"),
        ("gateway=/a.B/C||/a.B/D", "'' is not a full method name"),
        ("gateway=/a.B/C=/a.B/D", "is not a full method name"),
        ("gateway;notification-service", "is not a certificate common name"),
        ("gateway,gateway=/a.B/C", "'gateway' is listed twice"),
    ],
)
def test_a_malformed_peer_list_stops_the_settings_from_loading(value, problem, monkeypatch) -> None:
    _with_tls_files(monkeypatch)
    monkeypatch.setenv("GRPC_ALLOWED_PEERS", value)
    with pytest.raises(ValidationError, match="GRPC_ALLOWED_PEERS: ") as refused:
        GrpcServiceSettings(_env_file=None)
    assert problem in str(refused.value)
