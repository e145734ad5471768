"""CLIP measures for the XY plot, when the studio configures a CLIP model (open_clip).

- clip_score: max(100 * cos(image, prompt), 0), how well an image follows its prompt: the
  subject staying coherent as the LoRA weight rises;
- clip_training_similarity: cosine between an image and the mean training-image embedding,
  the style measure a palette cannot give.
Only a real CLIP's scores mean anything: the built-in tiny CLIP (random weights, for tests)
is marked `meaningful = False` and its scores never enter the recommendation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from bioart_pipeline.common.errors import Diagnosis
from bioart_pipeline.models.builtin import TINY_CLIP_VERSION

if TYPE_CHECKING:  # the model stack loads in the XY plot's job, not with the definitions
    import torch

TINY_CLIP_SOURCE = f"builtin:{TINY_CLIP_VERSION}"
_BATCH = 32


class ClipUnavailable(Diagnosis):
    """The configured CLIP model cannot be loaded; the message says what to configure."""


class ClipScorer:
    """Loads the model once; embeddings are L2-normalised."""

    def __init__(self, source: str, models_dir: Path, device: torch.device,
                 dtype: torch.dtype):
        self.source = source
        self.meaningful = source != TINY_CLIP_SOURCE
        self.device, self.dtype = device, dtype
        name = _open_clip_name(source, models_dir)
        import open_clip  # here: importing it costs seconds, the definitions do not need it

        try:
            model, _, self.preprocess = open_clip.create_model_and_transforms(name)
            self.tokenizer = open_clip.get_tokenizer(name)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ClipUnavailable(f"could not load CLIP from {source!r} ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0]}). {_HOW}") from exc
        # frozen: no autograd graph is ever built for its embeddings
        self.model = model.to(device, dtype).eval().requires_grad_(False)

    def image_embeddings(self, images: list[Image.Image]) -> torch.Tensor:
        import torch

        out = []
        for start in range(0, len(images), _BATCH):
            batch = images[start:start + _BATCH]
            pixels = torch.stack([self.preprocess(i.convert("RGB")) for i in batch])
            pixels = pixels.to(self.device, self.dtype)
            out.append(self.model.encode_image(pixels).float())
        return _normalised(torch.cat(out)).cpu()

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return _normalised(self.model.encode_text(tokens).float()).cpu()


def clip_score(image: torch.Tensor, text: torch.Tensor) -> float:
    """The CLIP score of one normalised image and text embedding (0..100)."""
    return max(100.0 * float(image @ text), 0.0)


def _normalised(embeddings: torch.Tensor) -> torch.Tensor:
    return embeddings / embeddings.norm(dim=-1, keepdim=True)


_HOW = ("Set BIOART_CLIP_MODEL to a local open_clip folder (open_clip_config.json + "
        "open_clip_model.safetensors, e.g. a download of laion/CLIP-ViT-L-14-laion2B-s32B-b82K) "
        "or to hf-hub:<org>/<repo>; leave it empty to evaluate without CLIP.")


def _open_clip_name(source: str, models_dir: Path) -> str:
    if source == TINY_CLIP_SOURCE:
        from bioart_pipeline.models.tiny_clip import build_tiny_clip

        return f"local-dir:{build_tiny_clip(models_dir)}"
    if source.startswith("hf-hub:"):
        return source
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ClipUnavailable(f"CLIP model {source!r} is not a folder. {_HOW}")
    if not list(folder.glob("*.safetensors")):
        raise ClipUnavailable(f"{folder} holds no .safetensors weights; pickled weights are "
                              f"refused. {_HOW}")
    return f"local-dir:{folder}"
