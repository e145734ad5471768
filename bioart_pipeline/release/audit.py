"""`bioart audit`: from a released LoRA back to every image that trained it, re-verified.

The LoRA's metadata points at its release (release id, manifest sha256); the release folder
holds the manifest, config, review and run ids; the images are re-hashed where still on disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow

from bioart_pipeline.common.files import read_json, sha256_file
from bioart_pipeline.release.bundle import SUMS, verify_sums
from bioart_pipeline.release.signing import (
    CERTIFICATE,
    SIGNATURE,
    read_png_claims,
    signature_verifies,
)
from bioart_pipeline.release.trust import NO_ANCHOR, AuditTrust, Signer, check_signer
from bioart_pipeline.training.export import (
    UnreadableLora,
    read_metadata,
    read_tensors,
    tensor_hash,
)

MANIFEST = "license_manifest.parquet"
# What a damaged or foreign file raises while it is read.
UNREADABLE = (OSError, ValueError, KeyError, TypeError, pyarrow.ArrowException)


@dataclass
class AuditReport:
    release_id: str = ""
    release_folder: str = ""
    lora_file: str = ""
    base_model: dict[str, Any] = field(default_factory=dict)
    training_config: dict[str, Any] = field(default_factory=dict)
    dagster_runs: dict[str, str] = field(default_factory=dict)
    signed_by: str = ""  # the signing certificate's subject
    # its issuer, SHA-256 fingerprint, validity, the anchor it was held against and the verdict
    signer: dict[str, Any] = field(default_factory=dict)
    timestamps: dict[str, str] = field(default_factory=dict)  # PNG -> RFC 3161 time ("" none)
    review: dict[str, Any] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not verified, allowed by option

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def audit(path: Path, data_dir: Path, releases_dir: Path, trust: AuditTrust) -> AuditReport:
    """Never raises on what it reads: an unreadable LoRA or release file is a problem in the
    report, named in one line. The signer counts only when `trust` vouches for it."""
    report = AuditReport()
    lora = _lora_file(path, report)
    if lora is None:
        return report
    report.lora_file = str(lora)
    try:
        _audit(lora, data_dir, releases_dir, trust, report)
    except UnreadableLora as exc:
        report.problems.append(str(exc))
    except UNREADABLE as exc:
        first = (str(exc).splitlines() or [""])[0]
        report.problems.append(f"a release file is unreadable ({type(exc).__name__}: {first})")
    return report


def _audit(lora: Path, data_dir: Path, releases_dir: Path, trust: AuditTrust,
           report: AuditReport) -> None:
    metadata = read_metadata(lora)
    report.release_id = metadata.get("bioart.release_id", "")
    if not report.release_id:
        report.problems.append(f"{lora.name} carries no provenance pointer (bioart.release_id)")
        return
    folder = _release_folder(lora, report.release_id, releases_dir)
    if folder is None:
        report.problems.append(f"release {report.release_id} not found under {releases_dir}")
        return
    report.release_folder = str(folder)
    _check_files(folder, lora, metadata, report)
    _check_signatures(folder, lora, trust, report)
    _describe(folder, report)
    _check_images(folder / MANIFEST, data_dir, report)


def _lora_file(path: Path, report: AuditReport) -> Path | None:
    if path.is_dir():
        named = _recorded_lora(path)
        found = [path / named] if named else sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            report.problems.append(f"{path} holds {len(found)} .safetensors files, expected 1")
            return None
        return found[0]
    if not path.is_file() or path.suffix != ".safetensors":
        report.problems.append(f"{path} is neither a release folder nor a .safetensors file")
        return None
    return path


def _recorded_lora(folder: Path) -> str | None:
    """The LoRA's file name as release.json records it (a pivotal-tuning release holds an
    embedding file too); None without a readable record (the audit reports that later)."""
    try:
        return read_json(folder / "release.json").get("lora_file")
    except (OSError, ValueError, AttributeError):
        return None


def _release_folder(lora: Path, release_id: str, releases_dir: Path) -> Path | None:
    candidates = [lora.parent, *sorted(releases_dir.glob("*/v*"))]
    for folder in candidates:
        info = folder / "release.json"
        if info.is_file() and read_json(info).get("release_id") == release_id:
            return folder
    return None


def _check_files(folder: Path, lora: Path, metadata: dict[str, str], report: AuditReport
                 ) -> None:
    report.problems += [f"release file {p}" for p in verify_sums(folder)]
    manifest_sha = sha256_file(folder / MANIFEST)
    if manifest_sha != metadata.get("bioart.manifest_sha256"):
        report.problems.append("the manifest's sha256 differs from the pointer in the LoRA")
    if "0x" + tensor_hash(read_tensors(lora)) != metadata.get("modelspec.hash_sha256"):
        report.problems.append(f"{lora.name}: its tensors differ from its "
                               "modelspec.hash_sha256")


def _check_signatures(folder: Path, lora: Path, trust: AuditTrust, report: AuditReport
                      ) -> None:
    """The signature over SHA256SUMS and who made it, then each PNG's C2PA manifest: signed
    by the same certificate, and claiming this LoRA and release."""
    chain, signature = folder / CERTIFICATE, folder / SIGNATURE
    if not (chain.is_file() and signature.is_file()):
        report.problems.append(f"the release is not signed ({SIGNATURE} or {CERTIFICATE} is "
                               "missing)")
        return
    signer = check_signer(chain.read_bytes(), trust.anchor)
    report.signed_by = signer.subject
    report.signer = {"subject": signer.subject, "issuer": signer.issuer,
                     "sha256_fingerprint": signer.fingerprint,
                     "valid_until": signer.valid_until, "verified": signer.verified,
                     "trust_anchor": trust.anchor.description if trust.anchor else ""}
    if not signature_verifies(folder / SUMS, signature.read_bytes(), chain.read_bytes()):
        report.problems.append(f"{SUMS}: its signature does not verify (it or {SIGNATURE} "
                               "changed)")
    elif not signer.verified:
        unverified = f"signature valid, signer not verified: {signer.problem}"
        allowed = signer.problem == NO_ANCHOR and trust.allow_untrusted
        (report.notes if allowed else report.problems).append(unverified)
    for image in sorted(folder.glob("*.png")):
        problem = _png_problem(image, signer, sha256_file(lora), report)
        if problem:
            report.problems.append(f"{image.name}: {problem}")


def _png_problem(image: Path, signer: Signer, lora_sha256: str, report: AuditReport) -> str:
    claims = read_png_claims(image, signer.c2pa_anchors)
    report.timestamps[image.name] = claims.timestamp
    if claims.state in ("Invalid", "missing"):
        return f"C2PA manifest {claims.state.lower()}"
    if claims.serial_number != signer.serial_number:
        return f"its C2PA manifest was signed by another certificate than {CERTIFICATE}'s"
    if signer.verified and claims.state != "Trusted":
        return "its C2PA signer does not chain to the trust anchor"
    if (claims.release.get("lora_sha256"), claims.release.get("release_id")) != (
            lora_sha256, report.release_id):
        return "its C2PA claims name another LoRA or release"
    return ""


def _describe(folder: Path, report: AuditReport) -> None:
    config = read_json(folder / "training_config.json")
    profile = config.get("profile", {})
    report.base_model = {"source": profile.get("source", ""),
                         "license": profile.get("base_model_license", ""),
                         "fingerprint": config.get("base_model_fingerprint", "")}
    report.training_config = config.get("preset", {})
    report.dagster_runs = read_json(folder / "release.json").get("dagster_runs", {})
    report.review = read_json(folder / "review.json")


def _check_images(manifest_file: Path, data_dir: Path, report: AuditReport) -> None:
    manifest = pd.read_parquet(manifest_file)
    for row in manifest[manifest["included"]].sort_values("path").to_dict("records"):
        on_disk = _verify(data_dir / row["path"], row["source_sha256"])
        if on_disk != "verified":
            report.problems.append(f"{row['path']}: {on_disk}")
        report.images.append({
            "path": row["path"], "sha256": row["source_sha256"], "license": row["license"],
            "author": row["author"], "source": row["source"], "caption": row["caption"],
            "verdict": row["verdict"], "signed_off_by": row.get("signed_off_by", ""),
            "signed_off_at": row.get("signed_off_at", ""),
            "embedded_rights": row.get("embedded_rights", ""), "on_disk": on_disk})


def _verify(path: Path, expected: str) -> str:
    if not path.is_file():
        return "missing"
    return "verified" if sha256_file(path) == expected else "changed since training"


def _signed(image: dict) -> str:
    if not image["signed_off_by"]:
        return ""
    return f"  (licence signed off by {image['signed_off_by']}, {image['signed_off_at']})"


def _signer_lines(report: AuditReport) -> list[str]:
    signer = report.signer
    if not signer:
        return [f"signed by: {report.signed_by or '-'}"]
    verdict = (f"verified against {signer['trust_anchor']}" if signer["verified"]
               else "NOT verified")
    stamped = {name: time for name, time in report.timestamps.items() if time}
    if not stamped:
        stamp = ("trusted timestamp: none (no time-stamping authority was configured: the "
                 f"signatures prove nothing after the certificate expires on "
                 f"{signer['valid_until']})")
    else:
        missing = sorted(set(report.timestamps) - set(stamped))
        stamp = (f"trusted timestamp: {', '.join(sorted(set(stamped.values())))}"
                 + (f"; none on {', '.join(missing)}" if missing else ""))
    return [f"signed by: {signer['subject']}",
            f"  issued by {signer['issuer']}; sha256 {signer['sha256_fingerprint']}; {verdict}",
            f"  {stamp}"]


def format_report(report: AuditReport) -> str:
    if not report.release_id:  # nothing to trace: the one line that says why
        return "\n".join(f"audit failed: {p}" for p in report.problems)
    lines = [f"release {report.release_id or '?'}: {report.release_folder or '-'}",
             f"LoRA: {report.lora_file}",
             *_signer_lines(report),
             f"base model: {report.base_model.get('source', '?')} "
             f"(license {report.base_model.get('license', '?')}; exact weights "
             f"{report.base_model.get('fingerprint') or '?'})",
             f"review: {report.review.get('reviewer', '?')} {report.review.get('reviewed_at', '')}",
             f"dagster runs: {report.dagster_runs}",
             f"training config: {report.training_config}",
             f"{len(report.images)} training images:"]
    lines += [f"  [{i['on_disk']}] {i['path']}  sha256 {i['sha256'][:16]}  {i['license']}  "
              f"{i['author']}  {i['source']}{_signed(i)}\n      caption: {i['caption']}"
              + (f"\n      rights in the file: {i['embedded_rights']}"
                 if i.get("embedded_rights") else "")
              for i in report.images]
    lines += [f"NOT VERIFIED: {note}" for note in report.notes]
    lines.append("OK: everything checks out" if report.ok else
                 "PROBLEMS:\n" + "\n".join(f"  - {p}" for p in report.problems))
    return "\n".join(lines)
