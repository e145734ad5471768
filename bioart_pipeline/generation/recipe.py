"""What to draw, as data: the prompt, the seed, the sampler's settings and the LoRAs at their
weights. The renderer draws a recipe. (Two drawings do not go through it yet: the validation
strip while a LoRA trains, training/samples.py, and the base builders' sample sheets.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoraWeight:
    adapter: str  # the name the renderer loaded the LoRA file under
    weight: float  # any real number: negative weights push away from what the LoRA learned


@dataclass(frozen=True)
class Recipe:
    prompt: str
    seed: int
    steps: int
    guidance_scale: float
    width: int
    height: int
    loras: tuple[LoraWeight, ...] = ()
    # Empty: the pipeline's own unconditional input (SDXL: zeros, SD 1.5: the empty prompt).
    negative_prompt: str = ""
    true_cfg_scale: float = 1.0  # Flux only (models/families.py)

    def settings(self) -> tuple:
        """All but the prompt and the seed: recipes alike in these draw in one batch."""
        return (self.steps, self.guidance_scale, self.width, self.height, self.loras,
                self.negative_prompt, self.true_cfg_scale)
