"""The renderer: what it draws for a recipe is what diffusers draws with the same LoRAs and
settings, LoRAs load once and scale per recipe (negative weights, several at once), and the
base model is drawn unchanged while LoRAs stay loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bioart_pipeline.generation.recipe import LoraWeight, Recipe
from bioart_pipeline.generation.renderer import Renderer
from tests.conftest import random_lora_file, tiny_pipe

PROMPTS = ("trig, a nucleus", "a neuron with dendrites")


def _recipe(prompt: str, seed: int, *loras: LoraWeight) -> Recipe:
    return Recipe(prompt=prompt, seed=seed, steps=3, guidance_scale=5.0, width=128, height=128,
                  loras=loras)


def _pixels(images) -> list[np.ndarray]:
    return [np.asarray(image, dtype=np.int16) for image in images]


@pytest.fixture(scope="module")
def loras(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("loras")
    return [random_lora_file(models_dir, folder / f"l{seed}.safetensors", seed)
            for seed in (1, 2)]


def _diffusers(models_dir: Path, files: dict[str, Path], weights: list[float]
               ) -> list[np.ndarray]:
    """The same images drawn with diffusers' own API, nothing of the renderer's."""
    pipe = tiny_pipe(models_dir)
    for name, file in files.items():
        pipe.load_lora_weights(str(file), adapter_name=name)
    if files:
        pipe.set_adapters(list(files), adapter_weights=weights)
    return _pixels(pipe(prompt=list(PROMPTS), num_inference_steps=3, guidance_scale=5.0,
                        height=128, width=128,
                        generator=[torch.Generator("cpu").manual_seed(7) for _ in PROMPTS]
                        ).images)


def test_a_recipe_draws_what_diffusers_draws(models_dir: Path, loras: list[Path]) -> None:
    renderer = Renderer(tiny_pipe(models_dir))
    base = _pixels(renderer.render([_recipe(p, 7) for p in PROMPTS]))
    renderer.load_lora("style", loras[0])
    renderer.load_lora("subject", loras[1])
    stack = (LoraWeight("style", 0.8), LoraWeight("subject", -0.6))
    stacked = _pixels(renderer.render([_recipe(p, 7, *stack) for p in PROMPTS]))
    alone = _pixels(renderer.render([_recipe(p, 7, stack[0]) for p in PROMPTS]))
    again = _pixels(renderer.render([_recipe(p, 7) for p in PROMPTS]))  # LoRAs still loaded

    expected = _diffusers(models_dir, {"style": loras[0], "subject": loras[1]}, [0.8, -0.6])
    assert all(np.array_equal(a, b) for a, b in zip(stacked, expected, strict=True))
    expected = _diffusers(models_dir, {"style": loras[0]}, [0.8])
    assert all(np.array_equal(a, b) for a, b in zip(alone, expected, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(base, again, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(base, _diffusers(models_dir, {}, []),
                                                    strict=True))
    # Each LoRA changes the picture: the comparisons above are not of identical images.
    assert min(np.abs(a - b).max() for a, b in zip(stacked, alone, strict=True)) > 10
    assert min(np.abs(a - b).max() for a, b in zip(alone, base, strict=True)) > 10


def test_an_image_depends_on_its_seed_not_its_batch(models_dir: Path, loras: list[Path]
                                                    ) -> None:
    recipes = [_recipe(p, seed, LoraWeight("style", 1.0)) for p in PROMPTS for seed in (3, 4)]
    renderer = Renderer(tiny_pipe(models_dir))
    with renderer.lora("style", loras[0]):
        together = _pixels(renderer.render(recipes))
        renderer.max_batch = 1
        one_by_one = _pixels(renderer.render(recipes))
    assert max(np.abs(a - b).max() for a, b in zip(together, one_by_one, strict=True)) <= 2
    assert np.abs(together[0] - together[1]).max() > 10  # another seed, another image
    assert renderer.pipe.get_list_adapters() == {}  # unloaded with the block


def test_unknown_and_twice_loaded_loras_are_named(models_dir: Path, loras: list[Path]) -> None:
    renderer = Renderer(tiny_pipe(models_dir))
    renderer.load_lora("style", loras[0])
    with pytest.raises(ValueError, match=r"already loaded as 'style'"):
        renderer.load_lora("style", loras[1])
    with pytest.raises(ValueError, match=r"\['subject'\] not loaded; loaded: \['style'\]"):
        renderer.render([_recipe(PROMPTS[0], 1, LoraWeight("subject", 0.5))])
