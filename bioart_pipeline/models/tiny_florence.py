"""A tiny Florence-2 with the real architecture and a real BART tokenizer, built offline.

It runs the captioner's code path (processor, task prompt, batched generation, decoding,
post-processing) in seconds on a CPU. Its weights are random, so its captions are gibberish
by design: it tests the machinery, never caption quality. Shapes follow transformers' own
Florence-2 tests: a one-stage DaViT vision tower and a 1+1 layer BART.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from open_clip.tokenizer import bytes_to_unicode  # GPT-2's byte map, which BART uses
from transformers import (
    BartTokenizer,
    CLIPImageProcessor,
    Florence2Config,
    Florence2ForConditionalGeneration,
    Florence2Processor,
)

from bioart_pipeline.common.files import atomic_dir
from bioart_pipeline.models.builtin import TINY_FLORENCE_VERSION

IMAGE_SIZE = 32
# DaViT with patch stride 4: (32 / 4)^2 patch tokens plus one pooled token.
IMAGE_TOKENS = (IMAGE_SIZE // 4) ** 2 + 1
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]


def _write_tokenizer(folder: Path) -> BartTokenizer:
    """BART's byte-level BPE with no merges: every byte is a token, so any text round-trips."""
    tokens = SPECIAL + list(bytes_to_unicode().values()) + ["<mask>", "<image>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = BartTokenizer.from_pretrained(folder,
                                              extra_special_tokens={"image_token": "<image>"})
    if len(tokenizer) != len(tokens):  # transformers 5 silently drops a vocab it cannot read
        raise RuntimeError(f"tiny BART tokenizer has {len(tokenizer)} tokens, "
                           f"expected {len(tokens)}")
    return tokenizer


def _config(tokenizer: BartTokenizer) -> Florence2Config:
    text = {"model_type": "bart", "vocab_size": len(tokenizer), "d_model": 16,
            "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 1,
            "decoder_attention_heads": 1, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32,
            # image tokens + prompt tokens (about 60 bytes of task text) must fit
            "max_position_embeddings": 256,
            "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2,
            "decoder_start_token_id": 2, "forced_bos_token_id": 0}
    vision = {"depths": [1], "patch_size": [7], "patch_stride": [4], "patch_padding": [3],
              "patch_prenorm": [False], "embed_dim": [16], "num_heads": [1], "num_groups": [1],
              "window_size": 12, "projection_dim": 16, "drop_path_rate": 0.0}
    return Florence2Config(text_config=text, vision_config=vision,
                           image_token_id=tokenizer.convert_tokens_to_ids("<image>"))


def _write(folder: Path) -> None:
    tokenizer = _write_tokenizer(folder)
    image_processor = CLIPImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_center_crop=False,
        image_seq_length=IMAGE_TOKENS, image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225])
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer,
                                   num_additional_image_tokens=1,
                                   post_processor_config={"pure_text": {}})
    processor.save_pretrained(folder)
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(_config(tokenizer))
    model.generation_config.max_new_tokens = 24
    model.save_pretrained(folder, safe_serialization=True)


def build_tiny_florence(models_dir: Path) -> Path:
    """The tiny Florence-2 folder under `models_dir` (built once, atomically)."""
    folder = Path(models_dir) / TINY_FLORENCE_VERSION
    if not (folder / "model.safetensors").is_file():
        with atomic_dir(folder) as tmp:
            _write(tmp)
    return folder
