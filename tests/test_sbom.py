"""sbom.spdx3.json validates as SPDX 3.0.1 with SPDX's own Python model (spdx-python-model:
types, vocabularies and required properties, read back and written again) and says what a
lawyer asks: which images, with which hash and licence, trained which LoRA on which base."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
from spdx_python_model import v3_0_1 as spdx

from bioart_pipeline.release.sbom import SbomInputs, spdx_document

INPUTS = SbomInputs(supplier="Cellula Studio", base_model="stabilityai/sdxl@abc",
                    base_model_license="LicenseRef-OpenRAIL-M",
                    release_license="LicenseRef-Cellula-Proprietary", spec_type="style",
                    trigger="cellulastyle", intended_use="commercial",
                    hyperparameters={"rank": "32", "learning_rate": "0.0001"},
                    limitations="Anatomical accuracy is not guaranteed.")
MANIFEST = pd.DataFrame([
    {"path": "portfolio/a.png", "source_sha256": "a" * 64, "license": "CC-BY-4.0",
     "attribution": "A by Jo Bloggs, CC-BY-4.0", "included": True},
    {"path": "portfolio/b.png", "source_sha256": "b" * 64, "license": "LicenseRef-Cellula-Own",
     "attribution": "", "included": True},
    {"path": "portfolio/nc.png", "source_sha256": "c" * 64, "license": "CC-BY-NC-4.0",
     "attribution": "", "included": False},
])


def _read_back() -> spdx.SHACLObjectSet:
    text = spdx_document(INPUTS, "cellula_style-v3", "cellula_cellstyle_32_30.safetensors",
                         "f" * 64, MANIFEST, created=datetime(2026, 12, 1, tzinfo=UTC))
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().read(io.BytesIO(text.encode()), objects)
    spdx.JSONLDSerializer().write(objects, io.BytesIO())  # raises on a missing property
    return objects


def _of(objects: spdx.SHACLObjectSet, kind: type) -> list:
    return [o for o in objects.objects if type(o) is kind]


def _targets(objects: spdx.SHACLObjectSet, source: object, kind: str) -> list:
    return [t for r in _of(objects, spdx.Relationship)
            if r.from_ is source and r.relationshipType == kind for t in r.to]


def test_the_lora_is_an_ai_package_trained_on_the_images_that_trained() -> None:
    objects = _read_back()
    (document,) = _of(objects, spdx.SpdxDocument)
    (lora,) = document.rootElement
    assert isinstance(lora, spdx.ai_AIPackage) and lora.software_packageVersion == \
        "cellula_style-v3"
    assert lora.suppliedBy.name == "Cellula Studio"
    assert lora.verifiedUsing[0].hashValue == "f" * 64
    assert {e.key: e.value for e in lora.ai_hyperparameter}["rank"] == "32"
    (dataset,) = _targets(objects, lora, spdx.RelationshipType.trainedOn)
    assert spdx.dataset_DatasetType.image in dataset.dataset_datasetType
    files = _targets(objects, dataset, spdx.RelationshipType.contains)
    assert sorted(f.name for f in files) == ["portfolio/a.png", "portfolio/b.png"]
    (base,) = _targets(objects, lora, spdx.RelationshipType.dependsOn)
    assert base.name == "stabilityai/sdxl@abc"


def test_every_image_has_its_hash_and_its_declared_and_concluded_licence() -> None:
    objects = _read_back()
    for file in _of(objects, spdx.software_File):
        row = MANIFEST.set_index("path").loc[file.name]
        assert file.verifiedUsing[0].hashValue == row["source_sha256"]
        for kind in (spdx.RelationshipType.hasDeclaredLicense,
                     spdx.RelationshipType.hasConcludedLicense):
            (licence,) = _targets(objects, file, kind)
            assert licence.simplelicensing_licenseExpression == row["license"]
