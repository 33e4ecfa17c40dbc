"""Which client certificates a gRPC service serves, and on which methods (GRPC_ALLOWED_PEERS).

Mutual TLS proves that a caller holds a certificate from the internal CA (ADR 0009); this
policy says which of those holders may call which methods, so a service that needs two
RPCs of another cannot call the rest of them. The syntax is one line, so that the same value
works in an environment variable, an `.env` file and a plain or folded YAML scalar:

    gateway,notification-service=/objectvision.v1.AuthService/GetUser|/objectvision.v1.AuthService/GetSettings

- Entries are separated by `,`. A bare certificate common name may call every method (the
  syntax before methods could be named, which still means the same).
- `name=methods` may call only those methods, separated by `|`: full gRPC method names,
  `/package.Service/Method`, or `/package.Service/*` for every method of that service.
- Whitespace and line breaks around names are ignored (a folded YAML scalar turns line
  breaks into spaces); an empty entry, as after a trailing comma, is skipped.

None of `,`, `=` and `|` can occur in a gRPC method name or a certificate common name, and
none needs quoting in a shell, an env file or YAML, so the value cannot be read two ways.
Anything else is refused when the settings load, naming GRPC_ALLOWED_PEERS, rather than
being read as a peer that nothing will ever match.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PEER_POLICY_VARIABLE = "GRPC_ALLOWED_PEERS"
_WILDCARD = "*"
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_PEER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_METHOD = re.compile(
    rf"/(?P<service>{_IDENTIFIER}(?:\.{_IDENTIFIER})*)/(?P<method>{_IDENTIFIER}|\{_WILDCARD})"
)
_SYNTAX = "name or name=/package.Service/Method|/package.Service/* (entries comma-separated)"


def service_of(full_method: str) -> str:
    """`objectvision.v1.AuthService` for `/objectvision.v1.AuthService/GetUser`."""
    return full_method.split("/")[1]


@dataclass(frozen=True)
class PeerGrant:
    """What one listed peer may call: these full method names, and every method of these
    services (the `/package.Service/*` entries)."""

    methods: frozenset[str]
    services: frozenset[str] = frozenset()

    def allows(self, full_method: str) -> bool:
        return full_method in self.methods or service_of(full_method) in self.services


@dataclass(frozen=True)
class PeerPolicy:
    """Certificate common names and what each may call; `None` for a name means every method.
    No names (the default): every certificate the CA signed may call every method."""

    grants: Mapping[str, PeerGrant | None] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: str) -> "PeerPolicy":
        grants: dict[str, PeerGrant | None] = {}
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            name, separator, methods = (part.strip() for part in entry.partition("="))
            if not _PEER_NAME.fullmatch(name):
                raise _malformed(entry, f"{name!r} is not a certificate common name")
            if name in grants:
                raise _malformed(entry, f"{name!r} is listed twice; list its methods once")
            grants[name] = _grant(entry, methods) if separator else None
        return cls(MappingProxyType(grants))

    @property
    def serves_every_peer(self) -> bool:
        return not self.grants

    def lists(self, peer: str) -> bool:
        return peer in self.grants

    def allows(self, peer: str, full_method: str) -> bool:
        """Whether `peer` may call `full_method`; an open policy allows everyone."""
        if self.serves_every_peer:
            return True
        if peer not in self.grants:
            return False
        grant = self.grants[peer]
        return grant is None or grant.allows(full_method)

    def services(self) -> frozenset[str]:
        """Every service whose methods the policy names (bare names name none)."""
        named: set[str] = set()
        for grant in self.grants.values():
            if grant is not None:
                named |= grant.services | {service_of(method) for method in grant.methods}
        return frozenset(named)


def _grant(entry: str, methods: str) -> PeerGrant:
    names = [method.strip() for method in methods.split("|")]
    if names == [""]:
        raise _malformed(entry, "no methods after '='; leave the peer out to refuse it")
    for method in names:
        if not _METHOD.fullmatch(method):
            raise _malformed(entry, f"{method!r} is not a full method name")
    wildcards = frozenset(service_of(m) for m in names if m.endswith(f"/{_WILDCARD}"))
    return PeerGrant(
        methods=frozenset(m for m in names if service_of(m) not in wildcards),
        services=wildcards,
    )


def _malformed(entry: str, problem: str) -> ValueError:
    return ValueError(f"{PEER_POLICY_VARIABLE}: {problem} (in {entry!r}; expected {_SYNTAX})")
