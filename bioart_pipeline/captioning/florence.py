"""Florence-2 captions with transformers' native classes, loaded once, batched.

The native classes (`Florence2ForConditionalGeneration`, `Florence2Processor`) load the
`florence-community/Florence-2-*` checkpoints without trust_remote_code. Captions are cached
by (image key, model, task, generation settings): an unchanged image is never captioned twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from bioart_pipeline.common.files import atomic_write_json, read_json, sha256_json
from bioart_pipeline.models.tiny_florence import TINY_FLORENCE_VERSION, build_tiny_florence

TINY_FLORENCE_SOURCE = f"builtin:{TINY_FLORENCE_VERSION}"
# Florence-2 tasks whose answer is plain text, i.e. a caption.
CAPTION_TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")


class CaptionerUnavailable(RuntimeError):
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
    """Loads the model once; `caption` runs batches on the GPU when there is one."""

    def __init__(self, settings: CaptionerSettings, models_dir: Path):
        from transformers import Florence2ForConditionalGeneration, Florence2Processor

        self.settings = settings
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _dtype(self.device)
        source = _resolve(settings.model, models_dir)
        try:
            self.processor = Florence2Processor.from_pretrained(source)
            self.model = Florence2ForConditionalGeneration.from_pretrained(
                source, dtype=self.dtype, use_safetensors=True).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise CaptionerUnavailable(
                f"could not load Florence-2 from {settings.model!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}). Set BIOART_CAPTION_MODEL to a local folder with "
                "a native-format checkpoint (e.g. a download of florence-community/"
                "Florence-2-base), or write caption sidecars next to the images.") from exc

    @torch.no_grad()
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


def cached_captions(files: dict[str, Path], settings: CaptionerSettings, cache_dir: Path,
                    load_captioner) -> tuple[dict[str, str], int]:
    """Model caption per image key; only images missing from the cache reach the model,
    which is loaded (by `load_captioner`) only if there is such an image.
    Returns (captions, newly captioned)."""
    captions, todo = {}, []
    for key in files:
        entry = cache_dir / f"{settings.cache_key(key)}.json"
        if entry.exists():
            captions[key] = read_json(entry)["caption"]
        else:
            todo.append(key)
    if todo:
        captioner = load_captioner()
        images = [Image.open(files[key]) for key in todo]
        for key, text in zip(todo, captioner.caption(images), strict=True):
            atomic_write_json(cache_dir / f"{settings.cache_key(key)}.json",
                              {"caption": text, "model": settings.model, "task": settings.task})
            captions[key] = text
    return captions, len(todo)


def _resolve(model: str, models_dir: Path) -> str:
    if model == TINY_FLORENCE_SOURCE:
        return str(build_tiny_florence(models_dir))
    if model.startswith("builtin:"):
        raise CaptionerUnavailable(f"unknown built-in captioner {model!r}; "
                                   f"known: {TINY_FLORENCE_SOURCE}")
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


def _dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
