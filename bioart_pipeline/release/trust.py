"""Whose signature a release must carry: the studio's trust anchor.

The anchor is configured (studio.yaml `trust_anchor`, or `bioart audit --trust-anchor`), never
read from the release: a folder brings its own certificate, and anyone can make a certificate
whose subject reads "O=Cellula Studio". An anchor is either
- the CA certificate(s), as a PEM file, that issue the studio's signing certificates: the
  release's certificate must chain to one of them (RFC 5280 path validation by
  `cryptography.x509.verification`), or
- the SHA-256 fingerprint of the signing certificate itself, `sha256:AB:CD:...` (colons and
  case optional), for a studio that pins one certificate.
C2PA manifests are then read with the same anchor as their only trust list (c2pa-python), so
a PNG signed by any other certificate reads as untrusted."""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.licensing.studio import load_studio

NO_ANCHOR = "no trust anchor configured"
_FINGERPRINT = re.compile(r"sha256:((?:[0-9a-f]{2}:?){32})", re.IGNORECASE)


@dataclass(frozen=True)
class TrustAnchor:
    description: str  # what was configured, as the audit prints it
    ca_certificates: tuple[x509.Certificate, ...] = ()
    fingerprint: str = ""  # the pinned signing certificate's SHA-256, lowercase hex


@dataclass(frozen=True)
class Signer:
    """The certificate a release carries, and whether the anchor vouches for it."""

    subject: str
    issuer: str
    fingerprint: str  # SHA-256 of the certificate, AB:CD:... as openssl prints it
    serial_number: int
    valid_until: str  # the certificate's notAfter, YYYY-MM-DD
    verified: bool
    problem: str = ""  # why it is not verified; "" when it is
    c2pa_anchors: str = ""  # PEM the release's C2PA manifests must chain to ("" untrusted)


def parse_trust_anchor(value: str, base: Path, outputs_dir: Path) -> TrustAnchor:
    """`value` as configured: `sha256:<fingerprint>`, or a PEM file (relative to `base`;
    `{outputs_dir}` stands for the outputs folder, where the demo's test CA lives)."""
    value = value.strip()
    pinned = _FINGERPRINT.fullmatch(value)
    if pinned:
        return TrustAnchor(f"pinned certificate {format_fingerprint(pinned[1])}",
                           fingerprint=pinned[1].replace(":", "").lower())
    if value.lower().startswith("sha256:"):
        raise ValueError(f"trust_anchor {value!r}: a fingerprint is sha256: and 32 hex bytes")
    path = base / value.replace("{outputs_dir}", str(outputs_dir))
    if not path.is_file():
        raise ValueError(f"trust_anchor: {path} not found (the CA certificate, PEM, that "
                         "issues the studio's signing certificates; `make demo` makes the "
                         "demo's test CA)")
    try:
        certificates = tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except ValueError as exc:
        raise ValueError(f"trust_anchor: {path} holds no PEM certificate ({exc})") from None
    return TrustAnchor(f"CA {certificates[0].subject.rfc4514_string()} ({path.name})",
                       ca_certificates=certificates)


def studio_trust_anchor(workspace: Workspace) -> TrustAnchor | None:
    """The anchor studio.yaml configures (relative to the data folder); None without one."""
    value = load_studio(workspace.studio_file).trust_anchor
    return parse_trust_anchor(value, workspace.data_dir, workspace.outputs_dir) if value else None


def check_signer(chain_pem: bytes, anchor: TrustAnchor | None,
                 at: datetime.datetime | None = None) -> Signer:
    """Whether `anchor` vouches for the chain's first certificate at time `at` (now)."""
    chain = x509.load_pem_x509_certificates(chain_pem)
    leaf = chain[0]
    signer = Signer(subject=leaf.subject.rfc4514_string(), issuer=leaf.issuer.rfc4514_string(),
                    fingerprint=format_fingerprint(_sha256(leaf)),
                    serial_number=leaf.serial_number,
                    valid_until=f"{leaf.not_valid_after_utc:%Y-%m-%d}", verified=False,
                    problem=NO_ANCHOR)
    if anchor is None:
        return signer
    at = at or datetime.datetime.now(datetime.UTC)
    problem = (_pinned_problem(leaf, anchor, at) if anchor.fingerprint
               else _chain_problem(chain, anchor, at))
    if problem:
        return replace(signer, problem=problem)
    anchors = anchor.ca_certificates or tuple(_issuers_of(leaf, chain[1:]))
    return replace(signer, verified=True, problem="", c2pa_anchors=_pem(anchors))


def format_fingerprint(hex_digest: str) -> str:
    digest = hex_digest.replace(":", "").upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _sha256(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _pinned_problem(leaf: x509.Certificate, anchor: TrustAnchor, at: datetime.datetime
                    ) -> str:
    if _sha256(leaf) != anchor.fingerprint:
        return (f"its certificate {format_fingerprint(_sha256(leaf))} is not the "
                f"{anchor.description}")
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        return (f"its certificate is valid from {leaf.not_valid_before_utc:%Y-%m-%d} to "
                f"{leaf.not_valid_after_utc:%Y-%m-%d}, not on {at:%Y-%m-%d}")
    return ""


def _chain_problem(chain: list[x509.Certificate], anchor: TrustAnchor,
                   at: datetime.datetime) -> str:
    # The CA side keeps the Web PKI rules (a real CA: basic constraints, key usage); the
    # signing certificate may carry the EKUs C2PA asks for (email protection, document
    # signing), which a TLS client policy would refuse.
    verifier = (PolicyBuilder().store(Store(list(anchor.ca_certificates))).time(at)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=ExtensionPolicy.permit_all())
                .build_client_verifier())
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError as exc:
        return f"its certificate does not chain to the trust anchor, {anchor.description} ({exc})"
    return ""


def _issuers_of(leaf: x509.Certificate, others: list[x509.Certificate]
                ) -> list[x509.Certificate]:
    """The certificates in the chain whose key really signed `leaf` (a name alone proves
    nothing: a forger can add a CA of the same name)."""
    found = []
    for candidate in others:
        try:
            leaf.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):  # another name or key: not it
            continue
        found.append(candidate)
    return found


def _pem(certificates: tuple[x509.Certificate, ...] | list[x509.Certificate]) -> str:
    return b"".join(certificate_pem(c) for c in certificates).decode()


@dataclass(frozen=True)
class AuditTrust:
    """What `bioart audit` holds a release's signer against."""

    anchor: TrustAnchor | None
    allow_untrusted: bool = False  # no anchor: report the signer unverified and pass
