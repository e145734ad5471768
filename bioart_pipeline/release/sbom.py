"""sbom.spdx3.json: the release as an SPDX 3.0.1 document (AI and Dataset profiles): the LoRA
as an AI package (base model, hyperparameters, domain, limitations, intended use, the studio
as supplier) trained on a dataset package whose files are the training images, each with its
hash and its declared and concluded licence."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from spdx_python_model import v3_0_1 as spdx

SBOM = "sbom.spdx3.json"


@dataclass(frozen=True)
class SbomInputs:
    supplier: str  # the studio (the spec's author)
    base_model: str  # pinned source
    base_model_license: str
    release_license: str  # SPDX expression of the LoRA's licence
    spec_type: str  # style | subject
    trigger: str
    intended_use: str
    hyperparameters: dict[str, str]
    limitations: str


def spdx_document(inputs: SbomInputs, release_id: str, lora_file: str, lora_sha256: str,
                  manifest: pd.DataFrame, created: datetime | None = None,
                  embeddings: dict[str, str] | None = None) -> str:
    """The JSON-LD text of the document; `manifest`: the release's licence manifest;
    `embeddings`: a pivotal-tuning release's embedding files (name: sha256), which the LoRA
    package contains."""
    base = f"urn:bioart:{release_id}:"
    objects = spdx.SHACLObjectSet()
    info = spdx.CreationInfo(specVersion="3.0.1",
                             created=(created or datetime.now(UTC)).replace(microsecond=0))
    studio = objects.add(spdx.Organization(_id=base + "studio", name=inputs.supplier,
                                           creationInfo=info))
    info.createdBy = [studio]
    tool = objects.add(spdx.Tool(_id=base + "tool", name="bioart_pipeline", creationInfo=info))
    info.createdUsing = [tool]
    licences = _Licences(objects, base, info)

    lora = objects.add(spdx.ai_AIPackage(
        _id=base + "lora", name=lora_file, creationInfo=info, software_packageVersion=release_id,
        software_primaryPurpose=spdx.software_SoftwarePurpose.model, suppliedBy=studio,
        releaseTime=info.created, verifiedUsing=[_sha256(lora_sha256)],
        ai_typeOfModel=["LoRA adapter (low-rank adaptation) for a latent diffusion model"],
        ai_domain=["scientific and medical illustration", inputs.spec_type],
        ai_informationAboutApplication=(f"{inputs.intended_use} use; trigger word "
                                        f"'{inputs.trigger}'"),
        ai_limitation=inputs.limitations,
        ai_hyperparameter=[spdx.DictionaryEntry(key=k, value=v)
                           for k, v in inputs.hyperparameters.items()],
        ai_autonomyType=spdx.PresenceType.no,
        ai_useSensitivePersonalInformation=spdx.PresenceType.no))
    base_model = objects.add(spdx.ai_AIPackage(
        _id=base + "base-model", name=inputs.base_model, creationInfo=info,
        software_primaryPurpose=spdx.software_SoftwarePurpose.model))
    trained = manifest[manifest["included"]]
    dataset = objects.add(spdx.dataset_DatasetPackage(
        _id=base + "training-set", name=f"{release_id} training images", creationInfo=info,
        software_primaryPurpose=spdx.software_SoftwarePurpose.data, suppliedBy=studio,
        releaseTime=info.created, dataset_datasetType=[spdx.dataset_DatasetType.image],
        dataset_dataCollectionProcess=("the studio's portfolio: files a person placed there, "
                                       "each with a licence sidecar judged before training"),
        dataset_intendedUse=f"training {lora_file}",
        dataset_hasSensitivePersonalInformation=spdx.PresenceType.no))
    files = [_image_file(objects, base, index, row, info, licences)
             for index, row in enumerate(trained.itertuples())]
    relate = _Relate(objects, base, info)
    relate(lora, spdx.RelationshipType.trainedOn, [dataset])
    relate(lora, spdx.RelationshipType.dependsOn, [base_model])
    relate(lora, spdx.RelationshipType.hasDeclaredLicense,
           [licences.get(inputs.release_license)])
    relate(base_model, spdx.RelationshipType.hasDeclaredLicense,
           [licences.get(inputs.base_model_license)])
    embedding_files = [objects.add(spdx.software_File(
        _id=f"{base}embedding-{index}", name=name, creationInfo=info,
        software_primaryPurpose=spdx.software_SoftwarePurpose.model,
        verifiedUsing=[_sha256(digest)]))
        for index, (name, digest) in enumerate(sorted((embeddings or {}).items()))]
    if embedding_files:
        relate(lora, spdx.RelationshipType.contains, embedding_files)
    if files:
        relate(dataset, spdx.RelationshipType.contains, files)
    for file, row in zip(files, trained.itertuples(), strict=True):
        licence = licences.get(row.license)
        relate(file, spdx.RelationshipType.hasDeclaredLicense, [licence])
        relate(file, spdx.RelationshipType.hasConcludedLicense, [licence])
    objects.add(spdx.SpdxDocument(
        _id=base + "document", name=f"{release_id} SPDX 3 document", creationInfo=info,
        rootElement=[lora],
        element=sorted((o for o in objects.objects if _is_element(o)), key=lambda o: o._id),
        profileConformance=[spdx.ProfileIdentifierType.core,
                            spdx.ProfileIdentifierType.software,
                            spdx.ProfileIdentifierType.simpleLicensing,
                            spdx.ProfileIdentifierType.ai, spdx.ProfileIdentifierType.dataset],
        dataLicense=licences.get("CC0-1.0")))
    out = io.BytesIO()
    spdx.JSONLDSerializer().write(objects, out, indent=2)
    return out.getvalue().decode()


def _sha256(digest: str) -> spdx.Hash:
    return spdx.Hash(algorithm=spdx.HashAlgorithm.sha256, hashValue=digest)


def _image_file(objects: spdx.SHACLObjectSet, base: str, index: int, row: tuple,
                info: spdx.CreationInfo, licences: _Licences) -> spdx.software_File:
    return objects.add(spdx.software_File(
        _id=f"{base}image-{index}", name=row.path, creationInfo=info,
        software_primaryPurpose=spdx.software_SoftwarePurpose.data,
        verifiedUsing=[_sha256(row.source_sha256)],
        software_attributionText=[row.attribution] if row.attribution else []))


def _is_element(obj: object) -> bool:
    return isinstance(obj, spdx.Element) and not isinstance(obj, spdx.SpdxDocument)


class _Licences:
    """One LicenseExpression element per distinct expression."""

    def __init__(self, objects: spdx.SHACLObjectSet, base: str, info: spdx.CreationInfo):
        self.objects, self.base, self.info, self.known = objects, base, info, {}

    def get(self, expression: str) -> spdx.simplelicensing_LicenseExpression:
        if expression not in self.known:
            self.known[expression] = self.objects.add(spdx.simplelicensing_LicenseExpression(
                _id=f"{self.base}licence-{len(self.known)}", creationInfo=self.info,
                simplelicensing_licenseExpression=expression or "NOASSERTION"))
        return self.known[expression]


class _Relate:
    def __init__(self, objects: spdx.SHACLObjectSet, base: str, info: spdx.CreationInfo):
        self.objects, self.base, self.info, self.count = objects, base, info, 0

    def __call__(self, source: spdx.Element, kind: str, targets: list) -> None:
        self.count += 1
        self.objects.add(spdx.Relationship(
            _id=f"{self.base}relationship-{self.count}", creationInfo=self.info,
            from_=source, relationshipType=kind, to=targets))
