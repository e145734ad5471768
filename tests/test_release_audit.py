"""`bioart audit` on the release the whole chain made (tests/conftest.py `pipeline_run`): what
trained it, every file re-verified, a closed folder, and a signer that counts only when the
studio's trust anchor vouches for it."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bioart_pipeline import cli
from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.models.builtin import TINY_VERSION
from bioart_pipeline.orchestration.resources import ReleaseSigning
from bioart_pipeline.release import signing
from bioart_pipeline.release.audit import audit
from bioart_pipeline.release.bundle import SUMS, read_sums
from bioart_pipeline.release.trust import AuditTrust, check_signer, studio_trust_anchor
from tests.conftest import (
    E2E_PARTITION,
    SIGNED_IMAGE,
    check_summary_against_manifest,
    copy_of_release,
    release_folder,
)

STUDIO = "Cellula Studio"
NOT_THE_ANCHOR = ("signature valid, signer not verified: its certificate does not chain to "
                  "the trust anchor, CA O=Cellula Studio,CN=Cellula Studio test CA "
                  "(test_ca_cert.pem)")


@pytest.fixture
def release(pipeline_run: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI pointed at the run's workspace; the release folder it made."""
    workspace = pipeline_run["workspace"]
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    return release_folder(pipeline_run)


def _audit(pipeline_run: dict, folder: Path, anchor: bool = True, allow_untrusted: bool = False):
    workspace = pipeline_run["workspace"]
    trust = AuditTrust(studio_trust_anchor(workspace) if anchor else None, allow_untrusted)
    return audit(folder, workspace.data_dir, folder.parents[1], trust)


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = cli.main(["audit", *args])
    return code, capsys.readouterr().out


def test_audit_lists_exactly_the_training_images(pipeline_run: dict, release: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    code, out = _cli(capsys, str(release), "--json")
    report = json.loads(out)
    workspace = pipeline_run["workspace"]
    manifest = pd.read_parquet(workspace.stage_dir("license_manifest", E2E_PARTITION)
                               / "manifest.parquet")
    trained = sorted(manifest[manifest["included"]]["path"])
    assert code == 0 and [i["path"] for i in report["images"]] == trained
    assert all(i["on_disk"] == "verified" for i in report["images"])
    assert report["ok"] and report["base_model"]["source"] == f"builtin:{TINY_VERSION}"
    assert set(report["dagster_runs"]) >= {"raw_portfolio", "lora_checkpoints"}
    rights = {i["path"]: i["embedded_rights"] for i in report["images"] if i["embedded_rights"]}
    assert rights == {f"portfolio/{SIGNED_IMAGE}": "PNG Author: Cellula Studio | PNG Copyright: "
                                                   "© 2026 Cellula Studio. All rights reserved."}


def test_audit_names_an_altered_training_image(pipeline_run: dict, release: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    target = (pipeline_run["workspace"].data_dir / "portfolio" / "mitochondria"
              / "mito_crosssection_01.png")
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"tampered")
        code, out = _cli(capsys, str(next(release.glob("*.safetensors"))))
        assert code == 1
        assert "portfolio/mitochondria/mito_crosssection_01.png: changed since training" in out
    finally:
        target.write_bytes(original)


def test_audit_names_the_signer_its_issuer_fingerprint_and_anchor(
        release: Path, capsys: pytest.CaptureFixture) -> None:
    code, out = _cli(capsys, str(release))
    leaf = x509.load_pem_x509_certificates((release / "signing_cert.pem").read_bytes())[0]
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    assert code == 0, out
    assert "signed by: O=Cellula Studio,CN=test certificate" in out
    assert (f"  issued by O=Cellula Studio,CN=Cellula Studio test CA; sha256 {fingerprint}; "
            "verified against CA O=Cellula Studio,CN=Cellula Studio test CA "
            "(test_ca_cert.pem)") in out
    assert "  trusted timestamp: none (no time-stamping authority was configured" in out
    assert "rights in the file: PNG Author: Cellula Studio | PNG Copyright: © 2026" in out


def _forge(folder: Path, key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate],
           resign_pngs: bool = True) -> None:
    """What a forger does: edit the card, recompute SHA256SUMS, sign it (and the PNGs) with
    their own key, and put their certificate in."""
    card = folder / "README.md"
    card.write_text(card.read_text() + "\nIntended use: anything, no restrictions.\n")
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    credentials = signing.Credentials(key_pem, chain_pem)
    if resign_pngs:
        claims = signing.read_png_claims(folder / "xy_grid.png").release
        for image in folder.glob("*.png"):
            signing.sign_png(image, credentials, signing.release_assertions(claims))
    (folder / "signing_cert.pem").write_bytes(chain_pem)
    (folder / SUMS).write_text("".join(
        f"{sha256_file(folder / name)}  {name}\n" for name in read_sums(folder)))
    (folder / "SHA256SUMS.sig").write_bytes(signing.sign_file(folder / SUMS, credentials))


def _certificate(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey,
                 issuer_key: ec.EllipticCurvePrivateKey, ca: bool, serial: int | None = None
                 ) -> x509.Certificate:
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, STUDIO)])

    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(key.public_key())
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                   encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if not ca:  # what C2PA asks of a signing certificate
        builder = (builder.add_extension(x509.ExtendedKeyUsage(
            [x509.ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _lookalike_chain(serial: int | None = None
                     ) -> tuple[ec.EllipticCurvePrivateKey, list[x509.Certificate]]:
    """A fresh CA named exactly like the studio's test CA, and a certificate it issued with
    the studio's subject (and, given `serial`, the studio certificate's serial number)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = f"{STUDIO} test CA"
    ca = _certificate(ca_name, ca_name, ca_key, ca_key, ca=True)
    return key, [_certificate("test certificate", ca_name, key, ca_key, False, serial), ca]


def test_a_folder_re_signed_by_a_self_signed_lookalike_fails(
        pipeline_run: dict, tmp_path: Path) -> None:
    folder = copy_of_release(pipeline_run, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    self_signed = _certificate("test certificate", "test certificate", key, key, ca=False)
    _forge(folder, key, [self_signed], resign_pngs=False)  # C2PA refuses self-signed signers
    report = _audit(pipeline_run, folder)
    assert report.signed_by == "O=Cellula Studio,CN=test certificate"  # the subject is copied
    assert [p for p in report.problems if p.startswith(NOT_THE_ANCHOR)]
    assert "xy_grid.png: its C2PA manifest was signed by another certificate than " \
           "signing_cert.pem's" in report.problems


def test_a_folder_re_signed_under_a_lookalike_ca_fails_with_its_pngs(
        pipeline_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_of_release(pipeline_run, tmp_path)
    _forge(folder, *_lookalike_chain())
    report = _audit(pipeline_run, folder)
    (problem,) = report.problems  # every hash and signature is consistent: only trust fails
    assert problem.startswith(NOT_THE_ANCHOR)
    workspace = pipeline_run["workspace"]
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    code, out = _cli(capsys, str(folder))
    assert code == 1 and f"  - {NOT_THE_ANCHOR}" in out and "NOT verified" in out


def test_a_png_signed_by_a_lookalike_with_the_same_serial_fails(
        pipeline_run: dict, tmp_path: Path) -> None:
    """Issuer name and serial number copied: only the anchor tells the certificates apart."""
    folder = copy_of_release(pipeline_run, tmp_path)
    studio_leaf = x509.load_pem_x509_certificates((folder / "signing_cert.pem").read_bytes())[0]
    key, chain = _lookalike_chain(serial=studio_leaf.serial_number)
    forged = signing.Credentials(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    grid = folder / "xy_grid.png"
    signing.sign_png(grid, forged, signing.release_assertions(
        signing.read_png_claims(grid).release))
    report = _audit(pipeline_run, folder)
    assert "xy_grid.png: its C2PA signer does not chain to the trust anchor" in report.problems


def test_without_an_anchor_the_signer_is_not_verified_and_the_audit_fails(
        pipeline_run: dict, release: Path) -> None:
    report = _audit(pipeline_run, release, anchor=False)
    assert report.problems == ["signature valid, signer not verified: no trust anchor "
                               "configured"]
    allowed = _audit(pipeline_run, release, anchor=False, allow_untrusted=True)
    assert allowed.ok and allowed.notes == report.problems
    assert allowed.signer["verified"] is False


def test_a_pinned_fingerprint_is_an_anchor(release: Path, capsys: pytest.CaptureFixture,
                                           tmp_path: Path) -> None:
    leaf = x509.load_pem_x509_certificates((release / "signing_cert.pem").read_bytes())[0]
    pinned = "sha256:" + leaf.fingerprint(hashes.SHA256()).hex(":")
    code, out = _cli(capsys, str(release), "--trust-anchor", pinned)
    assert code == 0 and "verified against pinned certificate" in out
    other = "sha256:" + "ab" * 32
    code, out = _cli(capsys, str(release), "--trust-anchor", other)
    assert code == 1 and "is not the pinned certificate AB:AB:" in out
    code, out = _cli(capsys, str(release), "--trust-anchor", "sha256:1234")
    assert code == 1 and "a fingerprint is sha256: and 32 hex bytes" in out
    code, out = _cli(capsys, str(release), "--trust-anchor", str(tmp_path / "none.pem"))
    assert code == 1 and "none.pem not found" in out


def test_the_release_refuses_to_sign_with_a_certificate_the_anchor_does_not_vouch_for(
        pipeline_run: dict, tmp_path: Path) -> None:
    key, chain = _lookalike_chain()
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    resource = ReleaseSigning(key_file=str(key_file), cert_file=str(cert_file))
    with pytest.raises(dg.Failure, match="is not the studio's: its certificate does not "
                                         "chain to the trust anchor"):
        resource.credentials(pipeline_run["workspace"], STUDIO)
    studio = ReleaseSigning().credentials(pipeline_run["workspace"], STUDIO)
    assert check_signer(studio.chain_pem, studio_trust_anchor(pipeline_run["workspace"])).verified


def test_every_file_is_listed_and_an_unlisted_one_fails_named(pipeline_run: dict,
                                                             tmp_path: Path) -> None:
    folder = copy_of_release(pipeline_run, tmp_path)
    listed = set(read_sums(folder))
    assert listed == {p.name for p in folder.iterdir()} - {SUMS, "SHA256SUMS.sig"}
    assert ".fingerprint" in listed
    lora = next(folder.glob("cellula_*.safetensors"))
    shutil.copyfile(lora, folder / "cellula_cellstyle_32_99.safetensors")
    shutil.copyfile(folder / "comfyui_workflow.json", folder / "comfyui_workflow_v2.json")
    report = _audit(pipeline_run, folder)
    assert report.problems == [
        f"release file {name}: in the folder but not listed in SHA256SUMS"
        for name in ("cellula_cellstyle_32_99.safetensors", "comfyui_workflow_v2.json")]


@pytest.mark.parametrize(("content", "problem"), [
    (None, "release file SHA256SUMS is missing"),
    ("not a sums line\n", "release file SHA256SUMS line 1 is not '<sha256>  <file name>': "
                          "'not a sums line'"),
    (f"{'0' * 64}  ../../outside.txt\n", "release file SHA256SUMS line 1 is not '<sha256>  "
                                         "<file name>': '" + "0" * 64 + "  ../../outside.txt'"),
])
def test_a_missing_or_malformed_sums_file_is_named(pipeline_run: dict, tmp_path: Path,
                                                   content: str | None, problem: str) -> None:
    folder = copy_of_release(pipeline_run, tmp_path)
    if content is None:
        (folder / SUMS).unlink()
    else:
        (folder / SUMS).write_text(content)
    assert problem in _audit(pipeline_run, folder).problems


@pytest.mark.parametrize("target", ["*.safetensors", "license_manifest.parquet",
                                    "TRAINING_DATA_SUMMARY.md", "xy_grid.png"])
def test_one_changed_byte_fails_the_audit_naming_the_file(pipeline_run: dict, tmp_path: Path,
                                                          target: str) -> None:
    folder = copy_of_release(pipeline_run, tmp_path)
    (path,) = folder.glob(target)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = _audit(pipeline_run, folder).problems
    assert f"release file {path.name}: sha256 differs from SHA256SUMS" in problems
    if path.suffix == ".safetensors":
        assert f"{path.name}: its tensors differ from its modelspec.hash_sha256" in problems


def test_rewritten_sums_break_the_signature(pipeline_run: dict, tmp_path: Path) -> None:
    """Changing a file and SHA256SUMS together is what the signature is there to catch."""
    folder = copy_of_release(pipeline_run, tmp_path)
    summary = folder / "TRAINING_DATA_SUMMARY.md"
    summary.write_text(summary.read_text().replace("## 3.", "## 3. (edited)"))
    sums = folder / "SHA256SUMS"
    sums.write_text("".join(
        f"{sha256_file(summary)}  {summary.name}\n" if line.endswith(summary.name) else
        line + "\n" for line in sums.read_text().splitlines()))
    assert _audit(pipeline_run, folder).problems == [
        "SHA256SUMS: its signature does not verify (it or SHA256SUMS.sig changed)"]


def test_a_configured_time_stamping_authority_is_used_and_never_skipped(tmp_path: Path
                                                                        ) -> None:
    """BIOART_TSA_URL reaches c2pa-python's signer: one that cannot be reached stops the
    signing rather than releasing without the timestamp the studio asked for."""
    from PIL import Image

    credentials = signing.test_credentials(tmp_path / "keys", STUDIO,
                                           tsa_url="http://127.0.0.1:9/")
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    with pytest.raises(signing.c2pa.C2paError, match="127.0.0.1:9"):
        signing.sign_png(image, credentials, signing.release_assertions({}))


def test_the_training_summary_matches_the_manifest_field_by_field(release: Path) -> None:
    check_summary_against_manifest(release)
