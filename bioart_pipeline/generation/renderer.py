"""The renderer: a base pipeline loaded once, LoRA files loaded once each under a name and
scaled per call, recipes drawn in batches.

Adapters are scaled, never fused: fusing and unfusing bf16/fp16 weights at each weight drifts
them by rounding, and the base would change under a grid. A pivotal-tuning checkpoint bundles
its trigger's vectors: they load with the LoRA, as the release's embedding file does, and
unload with it. Noise comes from a CPU generator per image, seeded by the recipe, so an image
depends on its own seed only, whatever batch it is drawn in and on whatever device.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from bioart_pipeline.generation.embeddings import load_embeddings, split_bundle, unload_embeddings
from bioart_pipeline.generation.recipe import LoraWeight, Recipe
from bioart_pipeline.models.families import family_of


class Renderer:
    def __init__(self, pipe, max_batch: int | None = None):
        """`pipe` already on its device and dtype (the compute placement's); `max_batch`
        images per pipeline call at most (None: every recipe alike in its settings)."""
        from diffusers.utils import logging as diffusers_logging

        # diffusers warns for every UNet-only LoRA that it found no text-encoder keys.
        diffusers_logging.set_verbosity_error()
        self.pipe, self.max_batch = pipe, max_batch
        self._embeddings: dict[str, list[str]] = {}  # adapter -> its embeddings' names

    def load_lora(self, adapter: str, file: Path) -> None:
        from safetensors.torch import load_file

        if adapter in self._embeddings:
            raise ValueError(f"a LoRA is already loaded as {adapter!r}")
        lora, embeddings = split_bundle(load_file(str(file)))
        self.pipe.load_lora_weights(lora, adapter_name=adapter)
        self._embeddings[adapter] = load_embeddings(self.pipe, embeddings)

    def unload_lora(self, adapter: str) -> None:
        self.pipe.delete_adapters([adapter])
        unload_embeddings(self.pipe, self._embeddings.pop(adapter))

    @contextmanager
    def lora(self, adapter: str, file: Path) -> Iterator[str]:
        """The LoRA loaded under `adapter` while the block runs."""
        self.load_lora(adapter, file)
        try:
            yield adapter
        finally:
            self.unload_lora(adapter)

    def render(self, recipes: Sequence[Recipe]) -> list[Image.Image]:
        """One image per recipe, in order."""
        images: list[Image.Image] = []
        for _, alike in itertools.groupby(recipes, key=Recipe.settings):
            alike = list(alike)
            size = self.max_batch or len(alike)
            for start in range(0, len(alike), size):
                images += self._draw(alike[start:start + size])
        return images

    def _draw(self, batch: list[Recipe]) -> list[Image.Image]:
        import torch

        first = batch[0]
        self._scale(first.loras)
        options = family_of(self.pipe).guidance_options(first.guidance_scale,
                                                        first.true_cfg_scale, len(batch))
        if first.negative_prompt:
            options["negative_prompt"] = [first.negative_prompt] * len(batch)
        return self.pipe(prompt=[r.prompt for r in batch],
                         generator=[torch.Generator("cpu").manual_seed(r.seed) for r in batch],
                         num_inference_steps=first.steps, height=first.height,
                         width=first.width, **options).images

    def _scale(self, loras: tuple[LoraWeight, ...]) -> None:
        unknown = [w.adapter for w in loras if w.adapter not in self._embeddings]
        if unknown:
            raise ValueError(f"LoRA {unknown} not loaded; loaded: {sorted(self._embeddings)}")
        if loras:
            self.pipe.enable_lora()
            self.pipe.set_adapters([w.adapter for w in loras],
                                   adapter_weights=[w.weight for w in loras])
        elif self._embeddings:
            self.pipe.disable_lora()  # the base model itself, the LoRAs staying loaded
