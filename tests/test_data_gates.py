"""The data gates on files written here, not the sample portfolio: own work as the studio file
declares it, embedded authorship against the sidecar, duplicates by the stated policy, and
licence sign-offs from the CLI and from a Dagster launch config."""

from __future__ import annotations

import io
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from PIL import Image, PngImagePlugin

from bioart_pipeline import cli
from bioart_pipeline.common.files import read_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.licensing.signoff import load_signoffs
from bioart_pipeline.licensing.studio import load_studio
from bioart_pipeline.models.families import FAMILIES
from bioart_pipeline.release.model_card import model_card
from bioart_pipeline.release.review import Review
from bioart_pipeline.sample_portfolio import Spec, render, scene_golgi, scene_mito
from tests.conftest import add_image, drawing, manifest_of, quick_spec

STUDIO_YAML = {"name": "Atelier", "authors": ["Atelier Vesalius", "Jane Doe"],
               "own_licenses": ["LicenseRef-Atelier-OwnWork"],
               "permitted_licenses": {"LicenseRef-Acme-Extended": "Acme agreement 2025, cl. 4"}}
OWN = {"license": "LicenseRef-Atelier-OwnWork", "author": "Atelier Vesalius",
       "source": "own work"}
CC_BY_SA = {"license": "CC BY-SA 4.0", "author": "Sam Shared", "source": "https://e.org/sa",
            "license_url": "https://creativecommons.org/licenses/by-sa/4.0/"}
XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       'xmlns:dc="http://purl.org/dc/elements/1.1/">{}</rdf:Description></rdf:RDF></x:xmpmeta>')


def _xmp_png(creator: str = "", rights: str = "") -> PngImagePlugin.PngInfo:
    body = (f"<dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>"
            if creator else "")
    body += (f"<dc:rights><rdf:Alt><rdf:li xml:lang='x-default'>{rights}</rdf:li></rdf:Alt>"
             "</dc:rights>" if rights else "")
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.format(body))
    return info


def _manifest(root: Path, folder: Path, use: str = "commercial",
              studio: dict | None = STUDIO_YAML) -> pd.DataFrame:
    if studio is not None:
        (root / "studio.yaml").write_text(yaml.safe_dump(studio))
    return manifest_of(root, folder, load_studio(root / "studio.yaml"), use)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "portfolio"
    path.mkdir()
    return path


def test_own_work_is_what_the_studio_file_declares(tmp_path: Path, folder: Path) -> None:
    add_image(folder, "own.png", drawing(1), OWN)
    add_image(folder, "staff.png", drawing(2), {**OWN, "author": "jane doe"})
    add_image(folder, "proprietary.png", drawing(3),
         {"license": "Proprietary", "author": "Other Agency Ltd", "source": "agency"})
    add_image(folder, "own_licence_other_author.png", drawing(4),
         {**OWN, "author": "Other Agency Ltd"})
    add_image(folder, "rights_reserved.png", drawing(5),
         {"license": "All rights reserved", "author": "Atelier Vesalius"})
    add_image(folder, "their_ref.png", drawing(6),
         {"license": "LicenseRef-Other-OwnWork", "author": "Other Agency Ltd"})
    add_image(folder, "permitted.png", drawing(7),
         {"license": "LicenseRef-Acme-Extended", "author": "Acme Stock"})
    add_image(folder, "not_spdx.png", drawing(8), {"license": "Free to use", "author": "Web"})
    manifest = _manifest(tmp_path, folder)
    verdicts = manifest["verdict"].to_dict()
    assert verdicts == {"own.png": "allowed", "staff.png": "allowed", "permitted.png": "allowed",
                        "proprietary.png": "refused", "own_licence_other_author.png": "refused",
                        "rights_reserved.png": "refused", "their_ref.png": "refused",
                        "not_spdx.png": "refused"}
    reasons = manifest["verdict_reason"]
    assert "LicenseRef-Proprietary from Other Agency Ltd" in reasons["proprietary.png"]
    assert "not one of the studio's authors" in reasons["own_licence_other_author.png"]
    assert "Acme agreement 2025, cl. 4" in reasons["permitted.png"]
    assert "not an SPDX licence id" in reasons["not_spdx.png"]
    assert set(manifest.index[manifest["included"]]) == {"own.png", "staff.png", "permitted.png"}


def test_without_a_studio_file_nothing_is_own_work(tmp_path: Path, folder: Path) -> None:
    add_image(folder, "own.png", drawing(1), OWN)
    add_image(folder, "cc0.png", drawing(2), {"license": "CC0", "author": "Someone"})
    manifest = _manifest(tmp_path, folder, studio=None)
    assert manifest.at["cc0.png", "verdict"] == "allowed"
    assert manifest.at["own.png", "verdict"] == "refused"
    assert "no studio.yaml declares" in manifest.at["own.png", "verdict_reason"]


def test_a_broken_studio_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "studio.yaml").write_text("authors: Jane Doe\n")
    with pytest.raises(ValueError, match="authors must be a list"):
        load_studio(tmp_path / "studio.yaml")
    (tmp_path / "studio.yaml").write_text("owners: [x]\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['owners'\]"):
        load_studio(tmp_path / "studio.yaml")


def test_embedded_authorship_is_compared_with_the_sidecar(tmp_path: Path, folder: Path) -> None:
    exif = Image.Exif()
    exif[0x013B] = "Other Agency Ltd"  # Artist
    add_image(folder, "exif_artist.jpg", drawing(1), OWN, exif=exif)
    add_image(folder, "xmp_creator.png", drawing(2), OWN, pnginfo=_xmp_png(creator="Other Agency"))
    add_image(folder, "xmp_rights.png", drawing(3), OWN,
         pnginfo=_xmp_png(rights="© 2024 Other Agency Ltd. All rights reserved."))
    add_image(folder, "consistent.png", drawing(4), OWN,
         pnginfo=_xmp_png("Atelier Vesalius", "© 2025 Atelier Vesalius. All rights reserved."))
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    add_image(folder, "hostile_xmp.png", drawing(5), OWN, pnginfo=info)
    commercial = _manifest(tmp_path, folder)
    internal = _manifest(tmp_path, folder, use="internal")
    for name in ("exif_artist.jpg", "xmp_creator.png", "xmp_rights.png", "hostile_xmp.png"):
        assert commercial.at[name, "verdict"] == "refused", name
        assert internal.at[name, "verdict"] == "needs-signoff", name
        assert "contradicts the sidecar" in commercial.at[name, "verdict_reason"]
    assert ("EXIF Artist names 'Other Agency Ltd'"
            in commercial.at["exif_artist.jpg", "verdict_reason"])
    assert "names 'Other Agency Ltd'" in commercial.at["xmp_rights.png", "verdict_reason"]
    assert "XMP cannot be read" in commercial.at["hostile_xmp.png", "verdict_reason"]
    assert commercial.at["consistent.png", "verdict"] == "allowed"


def _jpeg_copy(image: Image.Image, scale: float, quality: int) -> Image.Image:
    small = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_duplicates_follow_the_policy_not_the_file_names(tmp_path: Path, folder: Path) -> None:
    original = drawing(1, size=(1024, 1024))
    add_image(folder, "x.png", original, OWN)  # own work, full size
    add_image(folder, "dup_of_x.png", original, {"license": "CC-BY-NC-4.0", "author": "A",
                                             "source": "s"})  # same bytes, refused licence
    add_image(folder, "a_small_copy.jpg", _jpeg_copy(original, 0.6, 70), OWN)
    big = drawing(2, size=(1200, 1200))
    add_image(folder, "b_small.png", big.resize((700, 700)), OWN)
    add_image(folder, "c_big.png", big, {"license": "CC0", "author": "Someone"})
    add_image(folder, "newer.png", drawing(3), OWN)
    add_image(folder, "older.png", drawing(3), OWN)
    os.utime(folder / "older.png", (1_600_000_000, 1_600_000_000))
    manifest = _manifest(tmp_path, folder)
    kept = set(manifest.index[manifest["included"]])
    assert kept == {"x.png", "c_big.png", "older.png"}
    assert manifest.at["dup_of_x.png", "exclusion"].startswith("exact copy of x.png")
    assert "its licence is allowed, this one's is refused" in manifest.at["dup_of_x.png",
                                                                          "exclusion"]
    assert "larger original (1024x1024 against 614x614)" in manifest.at["a_small_copy.jpg",
                                                                        "exclusion"]
    assert "near duplicate" in manifest.at["b_small.png", "exclusion"]
    assert "older file (2020-09-13" in manifest.at["newer.png", "exclusion"]
    groups = manifest[manifest["duplicate_group"] > 0].groupby("duplicate_group").size()
    assert sorted(groups) == [2, 2, 3]


def test_a_house_style_series_is_not_collapsed(tmp_path: Path, folder: Path) -> None:
    """Distinct drawings from one template (same outline, organelles placed anew) all train;
    a resized, recompressed copy of one of them does not."""
    templates = [((1024, 768), lambda c, r: scene_mito(c, r, view="section", ratio=2.6, angle=0)),
                 ((1024, 768), lambda c, r: scene_golgi(c, r, cisternae=5, angle=0))]
    for index in range(12):
        size, scene = templates[index % 2]
        data, _ = render(Spec("series", f"series_{index:02d}", size, scene))
        add_image(folder, f"series_{index:02d}.png", Image.open(io.BytesIO(data)), OWN)
    first = Image.open(folder / "series_00.png").convert("RGB")
    add_image(folder, "series_00_resaved.jpg", _jpeg_copy(first, 0.7, 75), OWN)
    manifest = _manifest(tmp_path, folder)
    assert manifest["included"].sum() == 12
    assert manifest.at["series_00_resaved.jpg", "duplicate_of"] == "series_00.png"


def _gate_data(tmp_path: Path) -> Workspace:
    data = tmp_path / "data"
    folder = data / "gate_portfolio"
    (data / "loras").mkdir(parents=True)
    folder.mkdir()
    for seed in range(3):
        add_image(folder, f"own_{seed}.png", drawing(seed), OWN)
    add_image(folder, "share_alike.png", drawing(7), CC_BY_SA)
    (data / "studio.yaml").write_text(yaml.safe_dump(STUDIO_YAML))
    (data / "loras" / "gate.yaml").write_text(yaml.safe_dump(
        quick_spec(portfolio=["gate_portfolio"], author="Atelier Vesalius")))
    return Workspace(data, tmp_path / "outputs")


DATA_ASSETS = ["raw_portfolio", "preprocessed_images", "captions", "license_manifest"]


def _materialize(workspace: Workspace, instance: dg.DagsterInstance, config: dict | None = None
                 ) -> dg.ExecuteInProcessResult:
    job = build_definitions(workspace).resolve_job_def("lora_pipeline")
    run_config = {"ops": {"license_manifest": {"config": config}}} if config else None
    return job.execute_in_process(partition_key="gate", instance=instance, run_config=run_config,
                                  asset_selection=[dg.AssetKey(k) for k in DATA_ASSETS])


def test_signoff_from_the_launch_config_lets_the_image_train(tmp_path: Path) -> None:
    workspace = _gate_data(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", ["gate"])
    first = _materialize(workspace, instance)
    awaiting = first.asset_materializations_for_node("license_manifest")[0].metadata[
        "awaiting_signoff"]
    assert [r.data["path"] for r in awaiting.records] == ["gate_portfolio/share_alike.png"]
    manifest = read_table(workspace.table("license_manifest", "gate")).set_index("path")
    row = manifest.loc["gate_portfolio/share_alike.png"]
    assert row["verdict"] == "needs-signoff" and not row["included"]
    assert "awaits a licence sign-off" in row["exclusion"]
    with pytest.raises(dg.Failure, match="needs a note"):
        _materialize(workspace, instance, {"signer": "Jane Doe"})
    signed = _materialize(workspace, instance, {"signer": "Jane Doe",
                                                "note": "SA terms cleared by counsel, 2026-11-30"})
    (record,) = signed.asset_materializations_for_node("license_manifest")[0].metadata[
        "signed_off"].records
    assert record.data["signed_off_by"] == "Jane Doe"
    manifest = read_table(workspace.table("license_manifest", "gate")).set_index("path")
    row = manifest.loc["gate_portfolio/share_alike.png"]
    assert row["included"] and row["signed_off_by"] == "Jane Doe"
    assert row["signoff_note"].startswith("SA terms cleared")
    (signoff,) = load_signoffs(workspace.signoffs_dir, "gate")
    assert list(signoff.images) == ["gate_portfolio/share_alike.png"] and signoff.signed_at


def test_signoff_from_the_cli_covers_only_the_unchanged_file(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    workspace = _gate_data(tmp_path)
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    assert cli.main(["signoff", "gate", "--signer", "Jane"]) == 2
    assert "materialize license_manifest first" in capsys.readouterr().err
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", ["gate"])
    _materialize(workspace, instance)
    assert cli.main(["signoff", "gate", "--list"]) == 0
    assert "gate_portfolio/share_alike.png\tCC-BY-SA-4.0" in capsys.readouterr().out
    assert cli.main(["signoff", "gate", "--signer", "Jane", "--note", "ok",
                     "--image", "gate_portfolio/own_0.png"]) == 2
    assert "not awaiting a sign-off" in capsys.readouterr().err
    assert cli.main(["signoff", "gate", "--signer", "Jane", "--note", "cleared"]) == 0
    _materialize(workspace, instance)
    manifest = read_table(workspace.table("license_manifest", "gate")).set_index("path")
    assert manifest.at["gate_portfolio/share_alike.png", "included"]
    # An edited file is another image: the sign-off no longer covers it.
    drawing(8).save(workspace.data_dir / "gate_portfolio" / "share_alike.png")
    _materialize(workspace, instance)
    manifest = read_table(workspace.table("license_manifest", "gate")).set_index("path")
    assert not manifest.at["gate_portfolio/share_alike.png", "included"]


def test_the_model_card_lists_the_signoffs_without_the_images() -> None:
    manifest = pd.DataFrame([
        {"path": "p/share_alike.png", "license": "CC-BY-SA-4.0", "included": True,
         "signed_off_by": "Jane Doe", "signed_off_at": "2026-11-30T10:00:00+00:00",
         "signoff_note": "SA terms cleared"},
        {"path": "p/own.png", "license": "LicenseRef-Atelier-OwnWork", "included": True,
         "signed_off_by": "", "signed_off_at": "", "signoff_note": ""}])
    review = Review(lora="gate", evaluation="e", reviewer="R", checkpoint="epoch 2", weight=0.8,
                    approved=True)
    card = model_card(title="t", spec_type="style", trigger="trig", release_license="L",
                      base_model="b", base_model_license="bl", base_model_origin="",
                      family=FAMILIES["sdxl"], intended_use="commercial",
                      recommendation={"weight_range": [0.6, 1.0]},
                      review=review, manifest=manifest, epoch=2, rank=32, alpha=16,
                      a1111="trig, a cell <lora:t:0.8>", lora_file="t.safetensors",
                      embedding="", samples=1, signed_by="CN=test",
                      timestamp_authority="")
    assert "No trusted timestamp: no time-stamping authority was configured" in card
    assert ("- Jane Doe on 2026-11-30T10:00:00+00:00: 1 image(s) under CC-BY-SA-4.0. Note: SA "
            "terms cleared") in card
    assert "share_alike" not in card
