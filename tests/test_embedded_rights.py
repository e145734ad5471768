"""Rights that travel inside the file: each case a real file written with its format's own bytes
(IPTC-IIM in a JPEG's APP13, PNG tEXt/iTXt chunks, XMP packets, EXIF, C2PA manifests signed
with c2pa-python), through the real scan, preprocessing, captions and licence manifest. The
verdict and reason are what licensing/embedded.py's rules say, and the good files still train.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image, PngImagePlugin

from bioart_pipeline.licensing.embedded import reserves_ai_training
from bioart_pipeline.licensing.manifest import awaiting_signoff
from bioart_pipeline.licensing.signoff import draft_signoff, load_signoffs, record_signoff
from bioart_pipeline.licensing.studio import load_studio, same_party
from bioart_pipeline.portfolio.ingest import PortfolioFolder, scan_portfolio
from bioart_pipeline.release import signing
from bioart_pipeline.release.signing import release_assertions, sign_png
from bioart_pipeline.release.training_summary import SummaryHeader, training_summary
from tests.conftest import add_image, drawing, manifest_of

STUDIO_YAML = {"name": "Studio", "authors": ["Studio", "Jane Doe"],
               "own_licenses": ["LicenseRef-Studio-OwnWork"]}
OWN = {"license": "LicenseRef-Studio-OwnWork", "author": "Studio", "source": "own work"}
CC_BY = {"license": "CC-BY-4.0", "author": "Sam Lee", "source": "https://example.org/sam",
         "license_url": "https://creativecommons.org/licenses/by/4.0/"}
XMP = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">{}</rdf:RDF>'
       '</x:xmpmeta><?xpacket end="w"?>')
TDM = ('<rdf:Description rdf:about="" xmlns:tdm="http://www.w3.org/ns/tdmrep/" '
       'tdm:reservation="1" tdm:policy="https://example.org/tdm-policy.json"/>')
USAGE = ('<rdf:Description rdf:about="" xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/">'
         '<xmpRights:UsageTerms><rdf:Alt><rdf:li xml:lang="x-default">{}</rdf:li></rdf:Alt>'
         '</xmpRights:UsageTerms></rdf:Description>')
CREATOR = ('<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
           '<dc:creator><rdf:Seq><rdf:li>{}</rdf:li></rdf:Seq></dc:creator></rdf:Description>')
IPTC_UTF8 = (1, 90, b"\x1b%G")
MINING = "cawg.training-mining"


def _xmp(description: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.format(description))
    return info


def _png_text(**chunks: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)  # tEXt: Latin-1, as the PNG specification says
    return info


def _jpeg_with_iptc(image: Image.Image, records: list[tuple[int, int, bytes]]) -> bytes:
    """A JPEG with an APP13 "Photoshop 3.0" segment holding 8BIM resource 0x0404 (IPTC-IIM),
    as Photoshop and photo agencies write it."""
    iim = b"".join(b"\x1c" + bytes([record, dataset]) + struct.pack(">H", len(value)) + value
                   for record, dataset, value in records)
    resource = (b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iim))
                + iim + b"\0" * (len(iim) % 2))
    payload = b"Photoshop 3.0\0" + resource
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    jpeg = buffer.getvalue()
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _exif_ascii(tag: int, value: bytes) -> bytes:
    """An EXIF block with one ASCII-typed tag holding `value`'s raw bytes (UTF-8, as phones
    and Lightroom write it)."""
    value += b"\0"
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", tag, 2, len(value), 26)
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + value


DIGITAL_ART = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalArt"  # made by a person


def _signed(path: Path, keys: Path, assertions: list[dict], org: str = "Other Agency") -> None:
    """Signed with c2pa-python; a claim's first action must be "created" or "opened"."""
    if not any(a["label"] == "c2pa.actions" for a in assertions):
        assertions = [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": DIGITAL_ART}]}}, *assertions]
    sign_png(path, signing.test_credentials(keys / org.replace(" ", "_"), org), assertions)


def _append_text_chunk(path: Path, key: str, text: str) -> None:
    """A valid tEXt chunk added before IEND: an edit after signing that keeps the PNG valid."""
    data = path.read_bytes()
    body = key.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = (struct.pack(">I", len(body)) + b"tEXt" + body
             + struct.pack(">I", zlib.crc32(b"tEXt" + body)))
    path.write_bytes(data[:-12] + chunk + data[-12:])


def _write_cases(folder: Path, keys: Path) -> None:
    add_image(folder, "good_own.png", drawing(1), OWN)
    add_image(folder, "good_cc_by.png", drawing(2), CC_BY)
    (folder / "iptc_agency.jpg").write_bytes(_jpeg_with_iptc(drawing(3), [
        IPTC_UTF8, (2, 80, b"Other Agency"), (2, 116, "© 2023 Other Agency".encode())]))
    # no 1:90 declaration and Windows-1252 bytes, as older Photoshop wrote them
    (folder / "iptc_own.jpg").write_bytes(_jpeg_with_iptc(drawing(4), [
        (2, 80, b"Studio Ltd"), (2, 116, b"\xa9 2024 Studio")]))
    for name in ("iptc_agency.jpg", "iptc_own.jpg"):
        (folder / f"{name}.license.yaml").write_text(yaml.safe_dump(OWN))
        (folder / name).with_suffix(".txt").write_text("drawing")
    add_image(folder, "png_text_agency.png", drawing(5), OWN,
              pnginfo=_png_text(Author="Other Agency", Copyright="© 2023 Other Agency"))
    add_image(folder, "tdm_reserved.png", drawing(6), CC_BY, pnginfo=_xmp(TDM))
    add_image(folder, "usage_no_ai.png", drawing(7), CC_BY,
              pnginfo=_xmp(USAGE.format("Not for use in AI training")))
    add_image(folder, "editorial_only.png", drawing(8), CC_BY,
              pnginfo=_xmp(USAGE.format("Editorial use only")))
    add_image(folder, "c2pa_not_allowed.png", drawing(9), CC_BY)
    _signed(folder / "c2pa_not_allowed.png", keys, [{"label": MINING, "data": {"entries": {
        "cawg.ai_training": {"use": "notAllowed"}, "cawg.ai_inference": {"use": "allowed"}}}}])
    add_image(folder, "c2pa_constrained.png", drawing(10), CC_BY)
    _signed(folder / "c2pa_constrained.png", keys, [{"label": MINING, "data": {"entries": {
        "cawg.ai_generative_training": {"use": "constrained",
                                        "constraint_info": "licence from the agency"}}}}])
    add_image(folder, "c2pa_model_made.png", drawing(11), OWN)
    _signed(folder / "c2pa_model_made.png", keys, [{"label": "c2pa.actions", "data": {
        "actions": [{"action": "c2pa.created", "digitalSourceType":
                     "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}],
            org="Image Generator Inc")
    # exactly what this pipeline writes into its released samples, fed back as "own work"
    add_image(folder, "our_released_sample.png", drawing(12), OWN)
    _signed(folder / "our_released_sample.png", keys,
            release_assertions({"release_id": "r1", "lora_sha256": "0" * 64}), org="Studio")
    add_image(folder, "c2pa_edited.png", drawing(13), CC_BY)
    _signed(folder / "c2pa_edited.png", keys, [])
    _append_text_chunk(folder / "c2pa_edited.png", "Comment", "edited after signing")
    add_image(folder, "a1111_output.png", drawing(14), OWN,
              pnginfo=_png_text(parameters="a cell\nSteps: 20, Sampler: Euler a, Seed: 1"))
    add_image(folder, "nightshade.png", drawing(15), {**OWN, "author": "Studio Nightshade Inc"})
    add_image(folder, "studio_ltd.png", drawing(16), {**OWN, "author": "Studio Ltd"})
    add_image(folder, "exif_utf8.jpg", drawing(17), OWN,
              exif=_exif_ascii(0x8298, "© Studio 2024".encode()))
    add_image(folder, "staff_creator.png", drawing(18), OWN,
              pnginfo=_xmp(CREATOR.format("Jane Doe")))
    add_image(folder, "licence_list.png", drawing(19),
              {**CC_BY, "license": ["CC-BY-4.0", "MIT"]})


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("embedded")
    folder = root / "portfolio"
    folder.mkdir()
    _write_cases(folder, root / "keys")
    (root / "studio.yaml").write_text(yaml.safe_dump(STUDIO_YAML))
    studio = load_studio(root / "studio.yaml")
    raw = scan_portfolio([PortfolioFolder(folder, "train")], display=lambda p: p.name)
    return {"root": root, "folder": folder, "studio": studio, "raw": raw.set_index("path"),
            "manifest": manifest_of(root, folder, studio)}


VERDICTS = {
    "good_own.png": ("allowed", "studio's own work"),
    "good_cc_by.png": ("allowed", "attribution required"),
    "iptc_agency.jpg": ("refused", "IPTC By-line names 'Other Agency', the sidecar's author is "
                                   "'Studio'"),
    "iptc_own.jpg": ("allowed", "studio's own work"),
    "png_text_agency.png": ("refused", "PNG Author names 'Other Agency'"),
    "tdm_reserved.png": ("refused", "training reserved in the file: XMP TDMRep tdm:reservation "
                                    "= 1 (policy https://example.org/tdm-policy.json)"),
    "usage_no_ai.png": ("refused", "XMP xmpRights:UsageTerms 'Not for use in AI training' "
                                   "reserves AI training"),
    "editorial_only.png": ("needs-signoff", "'Editorial use only' is a usage term this "
                                            "pipeline cannot classify"),
    "c2pa_not_allowed.png": ("refused", "C2PA training-mining cawg.ai_training=notAllowed "
                                        "(signed by test certificate / Other Agency, Valid)"),
    "c2pa_constrained.png": ("needs-signoff", "cawg.ai_generative_training=constrained "
                                              "(licence from the agency)"),
    "c2pa_model_made.png": ("needs-signoff", "the file declares a model made it (C2PA "
                                             "trainedAlgorithmicMedia)"),
    "our_released_sample.png": ("refused", "cawg.ai_generative_training=notAllowed"),
    "c2pa_edited.png": ("needs-signoff", "C2PA manifest Invalid"),
    "a1111_output.png": ("needs-signoff", "PNG chunk parameters (Automatic1111 / Forge)"),
    "nightshade.png": ("refused", "the author 'Studio Nightshade Inc' is not one of the "
                                  "studio's authors"),
    "studio_ltd.png": ("allowed", "studio's own work"),
    "exif_utf8.jpg": ("allowed", "studio's own work"),
    "staff_creator.png": ("allowed", "studio's own work"),
}


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_the_verdict_and_its_reason(cases: dict, name: str) -> None:
    status, reason = VERDICTS[name]
    row = cases["manifest"].loc[name]
    assert (row["verdict"], reason in row["verdict_reason"]) == (status, True), \
        row["verdict_reason"]


def test_the_good_files_still_train(cases: dict) -> None:
    manifest = cases["manifest"]
    assert set(manifest.index[manifest["included"]]) == {
        name for name, (status, _) in VERDICTS.items() if status == "allowed"}
    assert "licence_list.png" not in manifest.index  # quarantined at the scan, with its reason


def test_a_licence_list_says_what_to_write(cases: dict) -> None:
    assert cases["raw"].at["licence_list.png", "status"] == (
        "licence_list.png.license.yaml: license is a list (['CC-BY-4.0', 'MIT']); write one "
        "SPDX expression, e.g. `CC-BY-4.0 OR MIT` (the licensee picks one) or "
        "`CC-BY-4.0 AND MIT` (both apply)")


def test_text_is_decoded_by_its_declared_encoding(cases: dict) -> None:
    raw = cases["raw"]
    assert raw.at["iptc_agency.jpg", "iptc_copyright"] == "© 2023 Other Agency"  # 1:90 UTF-8
    assert raw.at["iptc_own.jpg", "iptc_copyright"] == "© 2024 Studio"  # Windows-1252
    assert raw.at["exif_utf8.jpg", "exif_copyright"] == "© Studio 2024"  # not "Â© Studio"
    assert raw.at["png_text_agency.png", "png_copyright"] == "© 2023 Other Agency"  # Latin-1


def test_what_was_read_is_kept_per_image(cases: dict) -> None:
    raw, manifest = cases["raw"], cases["manifest"]
    assert raw.at["tdm_reserved.png", "xmp_tdm_policy"] == "https://example.org/tdm-policy.json"
    assert raw.at["c2pa_not_allowed.png", "c2pa_state"] == "Valid"
    assert "signingCredential.untrusted" in raw.at["c2pa_not_allowed.png", "c2pa_failures"]
    assert raw.at["c2pa_edited.png", "c2pa_state"] == "Invalid"
    assert raw.at["good_own.png", "c2pa_state"] == ""
    assert manifest.at["iptc_agency.jpg", "embedded_rights"] == (
        "IPTC By-line: Other Agency | IPTC Copyright Notice: © 2023 Other Agency")
    assert "C2PA: Valid, signer test certificate / Other Agency" in manifest.at[
        "c2pa_not_allowed.png", "embedded_rights"]
    # an untrusted signer is recorded in the reason even where nothing else is wrong
    assert "signer test certificate / Other Agency is on no trust list" in manifest.at[
        "c2pa_not_allowed.png", "verdict_reason"]


def test_a_model_made_image_trains_only_signed_off_and_is_counted(cases: dict) -> None:
    manifest = cases["manifest"]
    assert manifest.at["c2pa_model_made.png", "model_made"] == "C2PA trainedAlgorithmicMedia"
    assert "C2PA trainedAlgorithmicMedia" in manifest.at["our_released_sample.png",
                                                         "model_made"]
    pending = awaiting_signoff(manifest.reset_index())
    signoff = draft_signoff("embedded", "Jane Doe", "generated by our own pipeline, reviewed",
                            pending, ["c2pa_model_made.png"])
    assert "declares a model made it" in signoff.reasons["c2pa_model_made.png"]
    record_signoff(cases["root"] / "signoffs", signoff)
    signed = manifest_of(cases["root"], cases["folder"], cases["studio"],
                         signoffs=load_signoffs(cases["root"] / "signoffs", "embedded"))
    assert signed.at["c2pa_model_made.png", "included"]
    summary = training_summary(SummaryHeader("m", "style", "base", "its card"),
                               signed.reset_index(), cases["studio"], "m-v1", "2026-12-07")
    assert ("**2.5 Synthetic data**: yes: 1 work each declaring in its metadata that a model "
            "made it") in summary
    assert "**Refused for a reservation of rights embedded in the file**: 4 images" in summary


@pytest.mark.parametrize(("text", "reserves"), [
    ("Not for use in AI training", True), ("No AI training", True), ("#NoAI", True),
    ("noimageai", True), ("AI/ML training prohibited", True),
    ("Rights reserved for text and data mining under Art. 4(3) DSM", True),
    ("TDM opt-out", True), ("Do not use to train AI models", True),
    ("May not be used for machine learning without written permission", True),
    ("For nurse training courses", False), ("© 2024 Studio. All rights reserved.", False),
    ("AI training permitted", False), ("Not for commercial use", False),
    ("Licensed under CC BY 4.0", False),
])
def test_which_usage_terms_reserve_ai_training(text: str, reserves: bool) -> None:
    assert reserves_ai_training(text) is reserves


@pytest.mark.parametrize(("a", "b", "same"), [
    ("Cellula Studio Ltd", "Cellula Studio", True),
    ("Cellula Studio, S.A.R.L.", "cellula studio", True),
    ("Studio GmbH & Co. KG", "Studio", True), ("Studio Nightshade Inc", "Studio", False),
    ("Other Studio", "Studio", False), ("Studio", "Studio Nightshade", False), ("", "", False),
])
def test_a_name_is_the_same_party_only_as_the_same_name(a: str, b: str, same: bool) -> None:
    assert same_party(a, b) is same


def test_c2pa_history_reaches_ingredients(tmp_path: Path) -> None:
    """An edit of a generated image: the active manifest says "opened", the ingredient's own
    manifest says a model made it; the digital source type of the history counts."""
    import c2pa

    generated = tmp_path / "generated.png"
    drawing(20).save(generated)
    _signed(generated, tmp_path / "keys", [{"label": "c2pa.actions", "data": {"actions": [
        {"action": "c2pa.created", "digitalSourceType":
         "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}])
    edited = tmp_path / "edited.png"
    drawing(21).save(edited)
    credentials = signing.test_credentials(tmp_path / "keys" / "Studio", "Studio")
    manifest = {"claim_generator_info": [{"name": "editor"}], "title": "edited.png",
                "format": "image/png", "assertions": [{"label": "c2pa.actions", "data": {
                    "actions": [{"action": "c2pa.opened",
                                 "parameters": {"ingredientIds": ["generated"]}}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        alg=b"es256", sign_cert=credentials.chain_pem, private_key=credentials.private_key_pem,
        ta_url=None))
    with c2pa.Builder(json.dumps(manifest)) as builder:
        with generated.open("rb") as ingredient:
            builder.add_ingredient(json.dumps({"title": "generated.png", "label": "generated",
                                               "relationship": "parentOf"}),
                                   "image/png", ingredient)
        out = io.BytesIO()
        with edited.open("rb") as source:
            builder.sign(signer, "image/png", source, out)
    edited.write_bytes(out.getvalue())
    (tmp_path / "edited.png.license.yaml").write_text(yaml.safe_dump(OWN))
    raw = scan_portfolio([PortfolioFolder(tmp_path, "train")], display=lambda p: p.name)
    row = raw.set_index("path").loc["edited.png"]
    assert "trainedAlgorithmicMedia" in row["c2pa_digital_source_types"]
    assert pd.notna(row["c2pa_state"]) and row["c2pa_state"] in ("Valid", "Trusted")
