"""Mutual TLS material for internal gRPC, read from files that may be replaced while we run.

cert-manager renews a Certificate by rewriting the mounted Secret (an atomic symlink swap in
the pod), so nothing here loads the files once: servers re-read them on the first handshake
after they change (``TlsFiles.server_credentials``), clients rebuild their channel on the
first call after they change (``grpc_client.service_channel``). A half-written or
mismatched set is never put in use: the last good material stays until a complete,
consistent set is on disk.
"""

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

logger = logging.getLogger(__name__)

# (inode, mtime, size) of each file: changes when a file is rewritten or its symlink swapped.
Fingerprint = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes of one consistent set: our chain, our key, the CA we trust."""

    certificate_chain: bytes
    private_key: bytes
    root_certificates: bytes


@dataclass(frozen=True)
class TlsFiles:
    """Where a process finds its mTLS material; each side presents its own certificate and
    accepts only peers whose certificate the CA signed."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    def fingerprint(self) -> Fingerprint:
        """Cheap change detection (three stats, symlinks followed); OSError if one is missing."""
        stats = (os.stat(path) for path in (self.cert_file, self.key_file, self.ca_file))
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)

    def load(self) -> TlsMaterial:
        """Read and check the three files: OSError or ssl.SSLError when they are unusable.

        The stdlib ssl module checks that the key matches the certificate and that the CA
        parses, so a bad set fails here, once, instead of in every handshake.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_cert_chain(self.cert_file, self.key_file)
        context.load_verify_locations(cafile=self.ca_file)
        return TlsMaterial(
            certificate_chain=self.cert_file.read_bytes(),
            private_key=self.key_file.read_bytes(),
            root_certificates=self.ca_file.read_bytes(),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials that require a client certificate signed by the CA, and pick up
        replaced files on the next handshake (works with grpc.aio servers too)."""
        watcher = ReloadingMaterial(self)
        return grpc.dynamic_ssl_server_credentials(
            _server_configuration(watcher.material),
            # grpc takes None from the fetcher as "no change"; its stubs demand a configuration.
            watcher.server_configuration_if_changed,  # type: ignore[arg-type]
            require_client_authentication=True,
        )


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Present our certificate, verify the server's against the CA (and its name: the SANs
    must include the host of the target address)."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.root_certificates,
        private_key=material.private_key,
        certificate_chain=material.certificate_chain,
    )


def _server_configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.certificate_chain)],
        root_certificates=material.root_certificates,
    )


class ReloadingMaterial:
    """The current material of a TlsFiles, re-read only when the files' fingerprint moved.

    The first load must succeed (a service without its certificate must not start); later
    failures keep the previous material and are logged, so a rotation caught half-way only
    delays the switch to the next check.
    """

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.fingerprint = files.fingerprint()
        self.material = files.load()

    def reload_if_changed(self) -> TlsMaterial | None:
        """The new material when the files changed and form a usable set, else None."""
        try:
            fingerprint = self.files.fingerprint()
            if fingerprint == self.fingerprint:
                return None
            material = self.files.load()
            if self.files.fingerprint() != fingerprint:
                return None  # rewritten while we read: take it on the next check
        except (OSError, ssl.SSLError):
            logger.warning("TLS files changed but are not usable yet", exc_info=True)
            return None
        self.fingerprint, self.material = fingerprint, material
        logger.info("TLS certificate reloaded", extra={"cert_file": str(self.files.cert_file)})
        return material

    def server_configuration_if_changed(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's certificate fetcher: called at each new connection, None = keep the current."""
        material = self.reload_if_changed()
        return None if material is None else _server_configuration(material)
