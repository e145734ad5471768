"""A tiny CLIP in open_clip's folder format (open_clip_config.json + safetensors), built offline.

Random weights: it runs the CLIP scoring code path (loading a local folder, preprocessing,
CLIP's real tokenizer bundled with open_clip, embeddings) in a second on a CPU. Its scores
mean nothing and are never used to choose a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from bioart_pipeline.common.files import atomic_dir
from bioart_pipeline.models.builtin import TINY_CLIP_VERSION

CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 1, "width": 32, "patch_size": 16,
                       "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                       "std": [0.26862954, 0.26130258, 0.27577711]},
}


def build_tiny_clip(models_dir: Path) -> Path:
    """The tiny CLIP folder under `models_dir`, loadable as `local-dir:<folder>`."""
    folder = Path(models_dir) / TINY_CLIP_VERSION
    if not (folder / "open_clip_model.safetensors").is_file():
        with atomic_dir(folder) as tmp:
            (tmp / "open_clip_config.json").write_text(json.dumps(CONFIG, indent=2))
            import open_clip  # here: importing it costs seconds, the definitions do not need it

            torch.manual_seed(0)
            model = open_clip.CLIP(**CONFIG["model_cfg"])
            save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                      str(tmp / "open_clip_model.safetensors"))
    return folder
