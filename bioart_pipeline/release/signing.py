"""Signing a release so that tampering is evident to anyone, offline.

- The PNGs (the XY grid, the approved samples) carry a C2PA manifest (c2pa-python) whose
  assertions bind them to the release: its id, the LoRA file's sha256, the training-data
  summary's sha256; plus the CAWG `cawg.training-mining` assertion with the studio's terms
  for the released outputs.
- Every file is listed in SHA256SUMS, and SHA256SUMS.sig is an ECDSA (P-256, SHA-256)
  signature over it with the same key; `signing_cert.pem` is the certificate chain. A client
  checks it with openssl alone (README).

The key and certificate come from BIOART_SIGNING_KEY and BIOART_SIGNING_CERT (PEM files). The
demo and the tests use a local test CA and certificate, created once, and the release says so.
With BIOART_TSA_URL set, each C2PA signature gets an RFC 3161 timestamp from that authority,
so it stays verifiable after the certificate expires; offline, none."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bioart_pipeline.common.files import atomic_path

SIGNATURE = "SHA256SUMS.sig"
CERTIFICATE = "signing_cert.pem"
RELEASE_ASSERTION = "org.bioart.release"
TEST_CERTIFICATE = "test certificate"
TEST_CA = "test_ca_cert.pem"
# The studio's terms for images drawn with a released LoRA: no AI training or mining on them.
TRAINING_MINING = {"entries": {entry: {"use": "notAllowed"} for entry in (
    "cawg.ai_inference", "cawg.ai_generative_training", "cawg.ai_training",
    "cawg.data_mining")}}
# IPTC's term for media made by a trained model: what the XY grid and the samples are.
TRAINED_ALGORITHMIC = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class Credentials:
    private_key_pem: bytes
    chain_pem: bytes  # the signing certificate first, then its issuers
    test: bool = False  # the local test certificate, not the studio's identity
    tsa_url: str = ""  # an RFC 3161 time-stamping authority for the C2PA signatures

    @property
    def signed_by(self) -> str:
        return describe_signer(self.chain_pem) + (f" ({TEST_CERTIFICATE})" if self.test else "")


def describe_signer(chain_pem: bytes) -> str:
    """The signing certificate's subject, as `bioart audit` prints it."""
    return x509.load_pem_x509_certificates(chain_pem)[0].subject.rfc4514_string()


def load_credentials(key_file: Path, cert_file: Path, tsa_url: str = "") -> Credentials:
    return Credentials(key_file.read_bytes(), cert_file.read_bytes(), tsa_url=tsa_url)


def test_credentials(folder: Path, studio: str, tsa_url: str = "") -> Credentials:
    """A local CA and signing certificate for `studio`, made once in `folder` and reused;
    the CA's certificate (TEST_CA) is the demo's trust anchor."""
    files = {name: folder / name for name in ("test_signing_key.pem", "test_signing_cert.pem",
                                              TEST_CA)}
    if not all(path.exists() for path in files.values()):
        folder.mkdir(parents=True, exist_ok=True)
        for path, content in zip(files.values(), _make_test_chain(studio), strict=True):
            with atomic_path(path) as tmp:
                tmp.write_bytes(content)
        files["test_signing_key.pem"].chmod(0o600)
    return Credentials(files["test_signing_key.pem"].read_bytes(),
                       files["test_signing_cert.pem"].read_bytes(), test=True, tsa_url=tsa_url)


def _make_test_chain(studio: str) -> tuple[bytes, bytes, bytes]:
    """(signing key, chain, CA certificate). C2PA refuses a self-signed signing certificate:
    a CA issues it. The CA's key is not kept: nothing else can be issued under it."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name, name = _name(f"{studio} test CA", studio), _name(TEST_CERTIFICATE, studio)
    ca = _certificate(ca_name, ca_name, ca_key, ca_key.public_key(), ca=True)
    leaf = _certificate(name, ca_name, ca_key, key.public_key(), ca=False)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()), chain,
            ca.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization or "studio")])


def _certificate(subject: x509.Name, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
                 public_key: ec.EllipticCurvePublicKey, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    usage = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment",
                           "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                           "encipher_only", "decipher_only"), False)
    usage.update({"key_cert_sign": ca, "crl_sign": ca, "digital_signature": not ca})
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                              critical=True)
               .add_extension(x509.KeyUsage(**usage), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                              critical=False))
    if not ca:  # C2PA wants the issuer named and an extended key usage it accepts
        builder = (builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def release_assertions(release: dict[str, str]) -> list[dict]:
    """What a released PNG claims: made by a trained model, bound to `release`, and the
    studio's terms for its outputs."""
    return [
        {"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC}]}},
        {"label": RELEASE_ASSERTION, "data": release},
        {"label": "cawg.training-mining", "data": TRAINING_MINING},
    ]


def sign_png(path: Path, credentials: Credentials, assertions: list[dict]) -> None:
    """Embed a C2PA manifest with `assertions` in the PNG (replaces the file atomically)."""
    manifest = {"claim_generator_info": [{"name": "bioart_pipeline"}],
                "title": path.name, "format": "image/png", "assertions": assertions}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        alg=b"es256", sign_cert=credentials.chain_pem,
        private_key=credentials.private_key_pem,
        ta_url=credentials.tsa_url.encode() if credentials.tsa_url else None))
    with (c2pa.Builder(json.dumps(manifest)) as builder, atomic_path(path) as tmp,
          path.open("rb") as source, tmp.open("w+b") as signed):
        builder.sign(signer, "image/png", source, signed)


@dataclass(frozen=True)
class PngClaims:
    state: str  # 'Trusted', 'Valid' (signature intact, signer not trusted), 'Invalid', 'missing'
    release: dict  # the release assertion
    serial_number: int | None  # the signing certificate's
    timestamp: str  # the RFC 3161 time of the signature, "" without one


def read_png_claims(path: Path, trust_anchors: str = "") -> PngClaims:
    """A signed PNG's C2PA manifest, validated with `trust_anchors` (PEM) as the only trust
    list: 'Invalid' when any byte the manifest covers changed, 'Trusted' only when its signer
    chains to an anchor."""
    settings = {"trust": {"trust_anchors": trust_anchors}} if trust_anchors else {}
    try:
        with path.open("rb") as image, c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader("image/png", image, context=context)
            state, store = reader.get_validation_state(), json.loads(reader.json())
    except c2pa.C2paError:
        return PngClaims("missing", {}, None, "")
    active = store["manifests"][store["active_manifest"]]
    claims = next((a["data"] for a in active["assertions"]
                   if a["label"] == RELEASE_ASSERTION), {})
    info = active.get("signature_info", {})
    serial = info.get("cert_serial_number")
    return PngClaims(state, claims, int(serial) if serial else None, info.get("time", ""))


def sign_file(path: Path, credentials: Credentials) -> bytes:
    key = serialization.load_pem_private_key(credentials.private_key_pem, password=None)
    return key.sign(path.read_bytes(), ec.ECDSA(hashes.SHA256()))


def signature_verifies(path: Path, signature: bytes, chain_pem: bytes) -> bool:
    public_key = x509.load_pem_x509_certificates(chain_pem)[0].public_key()
    try:
        public_key.verify(signature, path.read_bytes(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
