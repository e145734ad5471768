"""A tiny model with Flux.1-dev's layout, built offline and deterministically: a
FluxTransformer2DModel (double-stream and single-stream blocks, guidance embedding, rotary
position axes), CLIP-L's text encoder for the pooled vector (CLIP's real tokenizer), a T5
encoder for the token sequence, and Flux's flow-matching scheduler with its resolution-dependent
shift. The Flux code paths (loading, flow-matching training, export, evaluation) run on it on the
CPU in tests.

Labelled for what it is: the T5 tokenizer is not T5's SentencePiece vocabulary (not on this
machine) but a Unigram vocabulary of the same form, trained offline by the `tokenizers` library
on the textbook corpus's captions. The VAE is textbook-tiny's (4 latent channels where Flux's
has 16) with a shift factor, as Flux's VAE has. The transformer is pretrained by `bioart
build-base --family flux` on the textbook corpus (weights in `textbook_tiny_flux/`, see its
README); the text encoders stay at their seeded initialisation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
)
from transformers import CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

from bioart_pipeline.models import tiny_sdxl
from bioart_pipeline.models.builtin import TEXTBOOK_TINY_FLUX
from bioart_pipeline.models.clip_tokenizer import EOS, write_clip_tokenizer

PRETRAINED_DIR = TEXTBOOK_TINY_FLUX  # version and fingerprint: builtin.py
T5_HIDDEN = 32
T5_VOCAB = 1000
T5_MAX_LENGTH = 512  # FluxPipeline's max_sequence_length default (Flux.1-dev)
# The T5-form vocabulary, committed: trained again, the trainer would give the pieces that never
# occur in the captions other ids (their order follows thread timing).
T5_VOCABULARY = Path(__file__).with_name("tiny_flux_t5_vocabulary.json")
# Flux.1-dev's scheduler_config.json: the shift grows with the image's token count.
SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True,
                    "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256,
                    "max_image_seq_len": 4096}


def random_transformer() -> FluxTransformer2DModel:
    # Flux.1-dev's layout at toy width (1.8 M parameters, as the tiny SDXL UNet): 4 heads of 32
    # (rotary axes 8 + 12 + 12 = 32), packed 2x2 latent patches (4 channels x 4 = 16 in),
    # guidance embedding on.
    return tiny_sdxl.seeded(lambda: FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2,
        attention_head_dim=32, num_attention_heads=4, joint_attention_dim=T5_HIDDEN,
        pooled_projection_dim=tiny_sdxl.TE1_HIDDEN, guidance_embeds=True,
        axes_dims_rope=(8, 12, 12)))


def t5_encoder() -> T5EncoderModel:
    return tiny_sdxl.seeded(lambda: T5EncoderModel(T5Config(
        vocab_size=T5_VOCAB, d_model=T5_HIDDEN, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, dropout_rate=0.0, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)))


def text_encoders() -> tuple[torch.nn.Module, torch.nn.Module]:
    """CLIP-L's (the tiny SDXL's first) and T5's, at their seeded initialisation."""
    return tiny_sdxl.text_encoders()[0], t5_encoder()


def t5_tokenizer() -> T5Tokenizer:
    """T5's form (Unigram over Metaspace pieces; <pad> 0, </s> 1, <unk> 2, </s> appended),
    its vocabulary trained on the corpus captions by `bioart build-base --family flux`
    (pretraining/base_model.py) and committed: every printable ASCII character is a piece, so
    any word tokenizes."""
    vocab = [(piece, score) for piece, score in json.loads(T5_VOCABULARY.read_text())]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=T5_MAX_LENGTH)


def _vae() -> AutoencoderKL:
    """Textbook-tiny's VAE with Flux's latent shift: the mean the pretraining measured, so
    shifted and scaled latents are centred, as Flux's are."""
    build = tiny_sdxl.check_pretrained_files()
    vae = AutoencoderKL.from_pretrained(tiny_sdxl.PRETRAINED_DIR / "vae")
    figures = build["figures"]["vae"]
    vae.register_to_config(shift_factor=round(
        figures["scaled_latent_mean"] / figures["scaling_factor"], 5))
    return vae


def _write(folder: Path, pretrained: bool) -> None:
    clip, t5 = text_encoders()
    parts = {"transformer": random_transformer(), "vae": _vae(), "text_encoder": clip,
             "text_encoder_2": t5}
    for name, model in parts.items():
        if not (pretrained and name == "transformer"):
            model.save_pretrained(folder / name, safe_serialization=True)
    if pretrained:
        shutil.copytree(PRETRAINED_DIR / "transformer", folder / "transformer")
        tiny_sdxl.check_pretrained((clip, t5), PRETRAINED_DIR)
    tokenizers = {"tokenizer": CLIPTokenizer.from_pretrained(
        write_clip_tokenizer(folder / "tokenizer", pad_token=EOS)), "tokenizer_2": t5_tokenizer()}
    tokenizers["tokenizer_2"].save_pretrained(folder / "tokenizer_2")
    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)
    scheduler.save_pretrained(folder / "scheduler")
    FluxPipeline(**parts, **tokenizers, scheduler=scheduler).save_config(folder)


def build_tiny_flux(folder: Path, pretrained: bool = True) -> Path:
    """Write the tiny Flux pipeline folder at `folder` (no-op if already complete): with the
    transformer `bioart build-base --family flux` pretrained, or at its seeded start."""
    return tiny_sdxl.build_once(folder, lambda tmp: _write(tmp, pretrained))
