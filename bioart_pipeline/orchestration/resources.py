"""Resources: where the data lives, the captioning and CLIP models, tracking.
The compute resource that runs every GPU job is in orchestration/compute.py."""


from pathlib import Path

import dagster as dg

from bioart_pipeline.captioning.florence import CaptionerSettings
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.release.signing import Credentials, load_credentials, test_credentials
from bioart_pipeline.release.trust import TrustAnchor, check_signer, studio_trust_anchor
from bioart_pipeline.specs import LoraSpec, load_spec


class StudioData(dg.ConfigurableResource):
    """The studio's data folder (read-only inputs) and the generated outputs folder."""

    data_dir: str
    outputs_dir: str

    @property
    def workspace(self) -> Workspace:
        return Workspace(Path(self.data_dir).resolve(), Path(self.outputs_dir).resolve())

    def spec(self, partition_key: str) -> LoraSpec:
        path = self.workspace.specs_dir / f"{partition_key}.yaml"
        if not path.exists():
            raise dg.Failure(f"no LoRA spec {path} for partition {partition_key!r}")
        return load_spec(path)


class CaptionModel(dg.ConfigurableResource):
    """The Florence-2 captioner for images without an artist caption. `model` is a local
    folder or hub id of a native-format checkpoint (florence-community/Florence-2-base);
    empty means none: such images then fail the captions step with what to configure."""

    model: str = ""
    task: str = "<MORE_DETAILED_CAPTION>"
    batch_size: int = 8
    max_new_tokens: int = 256
    num_beams: int = 3

    def settings(self) -> CaptionerSettings | None:
        if not self.model:
            return None
        return CaptionerSettings(model=self.model, task=self.task, batch_size=self.batch_size,
                                 max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)


class ClipModel(dg.ConfigurableResource):
    """An open_clip model for the XY plot's CLIP scores: a local folder (open_clip_config.json
    + safetensors) or hf-hub:<org>/<repo>; empty means the model-free measures only.
    It loads where the XY plot job runs, on the compute resource."""

    model: str = ""


class Tracking(dg.ConfigurableResource):
    """wandb for training runs and XY plots: "offline" keeps runs on disk (the default, so no
    data leaves the studio), "online" sends them (WANDB_API_KEY from the environment),
    "disabled" logs nothing."""

    mode: str = "offline"
    project: str = "bioart_pipeline"


class ReleaseSigning(dg.ConfigurableResource):
    """The key and certificate chain (PEM files) releases are signed with. Without them, a
    local test certificate made under the outputs folder, which every release then names.
    `tsa_url`: an RFC 3161 time-stamping authority for the C2PA signatures ("" none)."""

    key_file: str = ""
    cert_file: str = ""
    tsa_url: str = ""

    def credentials(self, workspace: Workspace, studio: str) -> Credentials:
        """Refused when the studio's trust anchor does not vouch for the certificate: its
        releases would fail `bioart audit`."""
        if bool(self.key_file) != bool(self.cert_file):
            raise dg.Failure("set both BIOART_SIGNING_KEY and BIOART_SIGNING_CERT (PEM files), "
                             "or neither for a local test certificate")
        if self.key_file:
            credentials = load_credentials(Path(self.key_file), Path(self.cert_file),
                                           self.tsa_url)
        else:
            credentials = test_credentials(workspace.outputs_dir / "signing", studio,
                                           self.tsa_url)
        anchor = _trust_anchor(workspace)
        signer = check_signer(credentials.chain_pem, anchor)
        if anchor and not signer.verified:
            raise dg.Failure(f"the signing certificate {signer.subject} is not the studio's: "
                             f"{signer.problem}; fix BIOART_SIGNING_CERT or trust_anchor in "
                             f"{workspace.studio_file.name}")
        return credentials


def _trust_anchor(workspace: Workspace) -> TrustAnchor | None:
    try:
        return studio_trust_anchor(workspace)
    except ValueError as exc:
        raise dg.Failure(f"{workspace.studio_file.name}: {exc}") from None
