"""The release's ComfyUI workflow is a graph ComfyUI can run: core nodes only, every required
input given, every link pointing at an existing node output of the type the input takes."""

from __future__ import annotations

import dataclasses

import pytest

from bioart_pipeline.generation.comfyui import (
    ComfyFiles,
    a1111_infotext,
    checkpoint_file_name,
    comfyui_prompt,
    comfyui_workflow,
)
from bioart_pipeline.generation.recipe import LoraWeight, Recipe

# ComfyUI's nodes.py (comfyanonymous/ComfyUI): required inputs (name -> type; a list type is
# a choice, "STRING"/"INT"/"FLOAT" a widget value) and RETURN_TYPES of the core nodes used.
CORE_NODES = {
    "CheckpointLoaderSimple": ({"ckpt_name": "CHOICE"}, ("MODEL", "CLIP", "VAE")),
    "LoraLoader": ({"model": "MODEL", "clip": "CLIP", "lora_name": "CHOICE",
                    "strength_model": "FLOAT", "strength_clip": "FLOAT"}, ("MODEL", "CLIP")),
    "CLIPTextEncode": ({"text": "STRING", "clip": "CLIP"}, ("CONDITIONING",)),
    "EmptyLatentImage": ({"width": "INT", "height": "INT", "batch_size": "INT"}, ("LATENT",)),
    "KSampler": ({"model": "MODEL", "seed": "INT", "steps": "INT", "cfg": "FLOAT",
                  "sampler_name": "CHOICE", "scheduler": "CHOICE", "positive": "CONDITIONING",
                  "negative": "CONDITIONING", "latent_image": "LATENT", "denoise": "FLOAT"},
                 ("LATENT",)),
    "VAEDecode": ({"samples": "LATENT", "vae": "VAE"}, ("IMAGE",)),
    "SaveImage": ({"images": "IMAGE", "filename_prefix": "STRING"}, ()),
    # Flux: nodes.py and comfy_extras/nodes_flux.py, nodes_sd3.py
    "UNETLoader": ({"unet_name": "CHOICE", "weight_dtype": "CHOICE"}, ("MODEL",)),
    "DualCLIPLoader": ({"clip_name1": "CHOICE", "clip_name2": "CHOICE", "type": "CHOICE"},
                       ("CLIP",)),
    "VAELoader": ({"vae_name": "CHOICE"}, ("VAE",)),
    "LoraLoaderModelOnly": ({"model": "MODEL", "lora_name": "CHOICE",
                             "strength_model": "FLOAT"}, ("MODEL",)),
    "FluxGuidance": ({"conditioning": "CONDITIONING", "guidance": "FLOAT"}, ("CONDITIONING",)),
    "EmptySD3LatentImage": ({"width": "INT", "height": "INT", "batch_size": "INT"}, ("LATENT",)),
}
# Choices ComfyUI offers whatever files are installed.
FIXED_CHOICES = {("UNETLoader", "weight_dtype"): ("default", "fp8_e4m3fn", "fp8_e5m2"),
                 ("DualCLIPLoader", "type"): ("sdxl", "sd3", "flux", "hunyuan_video"),
                 ("KSampler", "scheduler"): ("normal", "karras", "simple", "sgm_uniform")}
WIDGETS = {"STRING": str, "CHOICE": str, "INT": int, "FLOAT": float}
LORA = "cellula_cellstyle_32_30.safetensors"
RECIPE = Recipe(prompt="cellulastyle, a neuron", seed=3, steps=30, guidance_scale=7.0,
                width=1024, height=1024, loras=(LoraWeight("style", 0.8),))
FILES = ComfyFiles(checkpoint="sd_xl_base_1.0.safetensors", loras={"style": LORA})
SETTINGS = (RECIPE, FILES)
FLUX = (dataclasses.replace(RECIPE, guidance_scale=3.5),
        dataclasses.replace(FILES, checkpoint="flux1-dev.safetensors", family="flux"))
# A style + subject stack, the subject's weight negative: one loader each, in stacking order.
STACK = (dataclasses.replace(RECIPE, loras=(LoraWeight("style", 0.8),
                                            LoraWeight("subject", -0.4))),
         dataclasses.replace(FILES, loras={"style": LORA,
                                           "subject": "cellula_mito_16_20.safetensors"}))


STACK_FLUX = (STACK[0], dataclasses.replace(STACK[1], checkpoint="flux1-dev.safetensors",
                                             family="flux"))


@pytest.mark.parametrize("settings", [SETTINGS, FLUX, STACK, STACK_FLUX],
                         ids=["sdxl", "flux", "sdxl-stack", "flux-stack"])
def test_every_link_points_at_an_existing_output_of_the_right_type(settings: tuple) -> None:
    workflow = comfyui_workflow(*settings)
    for node_id, node in workflow.items():
        required, _ = CORE_NODES[node["class_type"]]
        assert set(node["inputs"]) == set(required), node_id
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                source, index = value
                outputs = CORE_NODES[workflow[source]["class_type"]][1]
                assert index < len(outputs) and outputs[index] == required[name], (
                    f"{node_id}.{name} -> {value}")
            else:
                assert isinstance(value, WIDGETS[required[name]]), f"{node_id}.{name}"
                choices = FIXED_CHOICES.get((node["class_type"], name))
                assert choices is None or value in choices, f"{node_id}.{name}"
    saves = [n for n in workflow.values() if n["class_type"] == "SaveImage"]
    assert len(saves) == 1  # one output node: the graph runs


def test_the_workflow_carries_the_approved_settings() -> None:
    workflow = comfyui_workflow(*SETTINGS)
    by_type = {n["class_type"]: n["inputs"] for n in workflow.values()}
    assert by_type["LoraLoader"]["lora_name"] == LORA
    assert by_type["LoraLoader"]["strength_model"] == 0.8
    assert by_type["CheckpointLoaderSimple"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    sampler = by_type["KSampler"]
    assert (sampler["steps"], sampler["cfg"], sampler["seed"]) == (30, 7.0, 3)
    assert (by_type["EmptyLatentImage"]["width"], by_type["EmptyLatentImage"]["height"]) == (
        1024, 1024)
    positive = workflow[sampler["positive"][0]]["inputs"]["text"]
    assert positive.startswith("cellulastyle")


def test_the_a1111_line_names_the_lora_at_its_weight() -> None:
    assert a1111_infotext(*SETTINGS).splitlines() == [
        "cellulastyle, a neuron <lora:cellula_cellstyle_32_30:0.8>",
        "Steps: 30, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 1024x1024"]


@pytest.mark.parametrize(("source", "name"), [
    ("stabilityai/stable-diffusion-xl-base-1.0@462165984030d82259a11f4367a4eed129e94a7b",
     "sd_xl_base_1.0.safetensors"),
    ("/models/juggernautXL.safetensors", "juggernautXL.safetensors"),
    ("/models/sdxl-base", "sdxl-base.safetensors"),
])
def test_the_base_model_is_named_as_comfyui_lists_it(source: str, name: str) -> None:
    assert checkpoint_file_name(source) == name


def test_a_pivotal_embedding_is_written_as_comfyui_reads_it_and_a1111_as_its_name() -> None:
    settings = (RECIPE, dataclasses.replace(FILES, embeddings=("cellulastyle",)))
    prompt = next(n["inputs"]["text"] for n in comfyui_workflow(*settings).values()
                  if n["_meta"]["title"].startswith("Prompt"))
    assert prompt == "embedding:cellulastyle, a neuron"
    assert a1111_infotext(*settings).startswith("cellulastyle, a neuron <lora:")
    assert checkpoint_file_name("stable-diffusion-v1-5/stable-diffusion-v1-5") == \
        "v1-5-pruned-emaonly.safetensors"


@pytest.mark.parametrize(("prompt", "written"), [
    ("cellulamito, cellulamitochondria", "embedding:cellulamito, cellulamitochondria"),
    ("embedding:cellulamito, a cell", "embedding:cellulamito, a cell"),
    ("a cell,cellulamito", "a cell, embedding:cellulamito"),
    ("(cellulamito:1.2) a cell", "(embedding:cellulamito:1.2) a cell"),
    ("cellulamito-like, a cellulamito", "cellulamito-like, a embedding:cellulamito"),
])
def test_only_the_whole_trigger_word_becomes_the_embedding(prompt: str, written: str) -> None:
    assert comfyui_prompt(prompt, "cellulamito") == written
    # as comfy/sd1_clip.py reads it: space-separated words, trailing commas stripped
    names = [w.removeprefix("embedding:").strip(",") for w in written.replace("(", " ").split()
             if w.startswith("embedding:")]
    assert names and {n.split(":")[0] for n in names} == {"cellulamito"}


def test_the_flux_workflow_loads_its_parts_and_samples_as_the_grid_did() -> None:
    workflow = comfyui_workflow(*FLUX)
    by_type = {n["class_type"]: n["inputs"] for n in workflow.values()}
    assert by_type["UNETLoader"]["unet_name"] == "flux1-dev.safetensors"
    assert by_type["DualCLIPLoader"]["type"] == "flux"
    assert by_type["LoraLoaderModelOnly"] == {"model": ["1", 0], "lora_name": LORA,
                                              "strength_model": 0.8}
    assert by_type["FluxGuidance"]["guidance"] == 3.5  # the distilled guidance, not CFG
    sampler = by_type["KSampler"]
    assert (sampler["cfg"], sampler["scheduler"], sampler["steps"]) == (1.0, "simple", 30)
    assert workflow[sampler["positive"][0]]["class_type"] == "FluxGuidance"
    assert "CFG scale: 1, Distilled CFG Scale: 3.5" in a1111_infotext(*FLUX)
    assert checkpoint_file_name("black-forest-labs/FLUX.1-dev") == "flux1-dev.safetensors"


def test_a_flux_grid_drawn_with_true_cfg_gives_the_sampler_that_cfg() -> None:
    settings = (dataclasses.replace(FLUX[0], guidance_scale=1.0, true_cfg_scale=5.0), FLUX[1])
    workflow = comfyui_workflow(*settings)
    sampler = next(n["inputs"] for n in workflow.values() if n["class_type"] == "KSampler")
    assert sampler["cfg"] == 5.0
    assert workflow[sampler["negative"][0]]["inputs"]["text"] == ""  # the grid's empty prompt
    assert "CFG scale: 5, Distilled CFG Scale: 1" in a1111_infotext(*settings)


@pytest.mark.parametrize("settings", [STACK, STACK_FLUX], ids=["sdxl", "flux"])
def test_a_stack_chains_its_loras_in_order_into_the_sampler(settings: tuple) -> None:
    workflow = comfyui_workflow(*settings)
    sampler = next(n["inputs"] for n in workflow.values() if n["class_type"] == "KSampler")
    chain, node = [], workflow[sampler["model"][0]]
    while node["class_type"].startswith("LoraLoader"):
        chain.append((node["inputs"]["lora_name"], node["inputs"]["strength_model"]))
        node = workflow[node["inputs"]["model"][0]]
    assert chain[::-1] == [(LORA, 0.8), ("cellula_mito_16_20.safetensors", -0.4)]
    if settings[1].family != "flux":  # the prompt is encoded by the CLIP both LoRAs patched
        prompt = workflow[sampler["positive"][0]]["inputs"]
        assert workflow[prompt["clip"][0]]["inputs"]["lora_name"] == chain[0][0]
    assert a1111_infotext(*settings).splitlines()[0] == (
        "cellulastyle, a neuron <lora:cellula_cellstyle_32_30:0.8> "
        "<lora:cellula_mito_16_20:-0.4>")
