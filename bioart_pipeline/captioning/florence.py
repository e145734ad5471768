"""Florence-2 captions with transformers' native classes, loaded once, batched.

The native classes (`Florence2ForConditionalGeneration`, `Florence2Processor`) load the
`florence-community/Florence-2-*` checkpoints without trust_remote_code. Captions are cached
by (image key, model, task, generation settings): an unchanged image is never captioned twice.
The images the cache lacks go to the model as a CaptionJob on the compute resource.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from PIL import Image
from tqdm import tqdm

from bioart_pipeline.common.errors import Diagnosis
from bioart_pipeline.common.files import atomic_write_json, read_json, sha256_json
from bioart_pipeline.common.reporting import Reporter
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.models.builtin import TINY_FLORENCE_VERSION

if TYPE_CHECKING:  # the model stack loads in the caption job, not with the definitions
    import torch

TINY_FLORENCE_SOURCE = f"builtin:{TINY_FLORENCE_VERSION}"
# Florence-2 tasks whose answer is plain text, i.e. a caption.
CAPTION_TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")
CAPTIONS = "captions.json"  # a caption job's output: image key -> caption


class CaptionerUnavailable(Diagnosis):
    """The configured captioning model cannot be loaded; the message says what to configure."""


@dataclass(frozen=True)
class CaptionerSettings:
    model: str  # hub id, local folder, or the built-in tiny test model
    task: str = "<MORE_DETAILED_CAPTION>"
    batch_size: int = 8
    max_new_tokens: int = 256
    num_beams: int = 3

    def __post_init__(self) -> None:
        if self.task not in CAPTION_TASKS:
            raise ValueError(f"caption task must be one of {CAPTION_TASKS}, got {self.task!r}")

    @property
    def origin(self) -> str:
        """What a caption row records as its source (plus the terminology version)."""
        return f"{self.model} {self.task}"

    def cache_key(self, image_key: str) -> str:
        return sha256_json({"image": image_key, **asdict(self)})[:24]


class Florence2Captioner:
    """Loads the model once on the given device and dtype; `caption` runs batches."""

    def __init__(self, settings: CaptionerSettings, models_dir: Path, device: torch.device,
                 dtype: torch.dtype):
        from transformers import Florence2ForConditionalGeneration, Florence2Processor

        self.settings = settings
        self.device, self.dtype = device, dtype
        source = _resolve(settings.model, models_dir)
        try:
            self.processor = Florence2Processor.from_pretrained(source)
            model = Florence2ForConditionalGeneration.from_pretrained(
                source, dtype=self.dtype, use_safetensors=True)
            # frozen: captioning builds no autograd graph
            self.model = model.to(self.device).eval().requires_grad_(False)
        except (OSError, ValueError) as exc:
            raise CaptionerUnavailable(
                f"could not load Florence-2 from {settings.model!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}). Set BIOART_CAPTION_MODEL to a local folder with "
                "a native-format checkpoint (e.g. a download of florence-community/"
                "Florence-2-base), or write caption sidecars next to the images.") from exc

    def caption(self, images: list[Image.Image]) -> list[str]:
        out: list[str] = []
        size = self.settings.batch_size
        for start in tqdm(range(0, len(images), size), desc="florence-2", unit="batch",
                          leave=False):
            out += self._batch(images[start:start + size])
        return out

    def _batch(self, images: list[Image.Image]) -> list[str]:
        task = self.settings.task
        inputs = self.processor(images=[i.convert("RGB") for i in images],
                                text=[task] * len(images), padding="longest",
                                return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        generated = self.model.generate(**inputs, max_new_tokens=self.settings.max_new_tokens,
                                        num_beams=self.settings.num_beams, do_sample=False)
        # skip_special_tokens: batched generation pads shorter answers with <pad>
        texts = self.processor.batch_decode(generated, skip_special_tokens=True)
        return [self.processor.post_process_generation(text, task=task,
                                                       image_size=image.size)[task].strip()
                for text, image in zip(texts, images, strict=True)]


@dataclass(frozen=True)
class CaptionJob:
    """The images the caption cache lacks, for the captioning model."""

    kind: ClassVar[str] = "captioning"
    done_file: ClassVar[str] = CAPTIONS

    settings: CaptionerSettings
    images: tuple[tuple[str, str], ...]  # (image key, preprocessed file)
    models_dir: str
    placement: Placement = Placement()

    def shipment(self) -> tuple[CaptionJob, dict[str, Path]]:
        images = tuple((key, f"images/{key}{Path(file).suffix}") for key, file in self.images)
        return (dataclasses.replace(self, images=images, models_dir=""),
                {name: Path(file) for (_, name), (_, file) in zip(images, self.images,
                                                                  strict=True)})

    def unpacked(self, workdir: Path, models_dir: Path) -> CaptionJob:
        return dataclasses.replace(
            self, images=tuple((key, str(workdir / file)) for key, file in self.images),
            models_dir=str(models_dir))


def run_caption_job(job: CaptionJob, out_dir: Path, reporter: Reporter) -> None:
    """The compute entrypoint's runner: one caption per image into captions.json."""
    captioner = Florence2Captioner(job.settings, Path(job.models_dir),
                                   job.placement.torch_device(), job.placement.torch_dtype())
    images = [Image.open(file) for _, file in job.images]
    texts = captioner.caption(images)
    atomic_write_json(out_dir / CAPTIONS,
                      {key: text for (key, _), text in zip(job.images, texts, strict=True)})
    reporter.log(f"{len(texts)} image(s) captioned by {job.settings.model}")


def cached_captions(keys: list[str], settings: CaptionerSettings, cache_dir: Path
                    ) -> tuple[dict[str, str], list[str]]:
    """The model captions the cache holds, and the image keys it lacks."""
    captions, todo = {}, []
    for key in keys:
        entry = cache_dir / f"{settings.cache_key(key)}.json"
        if entry.exists():
            captions[key] = read_json(entry)["caption"]
        else:
            todo.append(key)
    return captions, todo


def store_captions(captions: dict[str, str], settings: CaptionerSettings, cache_dir: Path
                   ) -> None:
    for key, text in captions.items():
        atomic_write_json(cache_dir / f"{settings.cache_key(key)}.json",
                          {"caption": text, "model": settings.model, "task": settings.task})


def _resolve(model: str, models_dir: Path) -> str:
    if model == TINY_FLORENCE_SOURCE:
        from bioart_pipeline.models.tiny_florence import build_tiny_florence

        return str(build_tiny_florence(models_dir))
    if model.startswith("builtin:"):
        raise CaptionerUnavailable(f"unknown built-in captioner {model!r}; "
                                   f"known: {TINY_FLORENCE_SOURCE}")
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model
