"""Embeddings bundled in a LoRA checkpoint (pivotal tuning, training/pivotal.py), as A1111's
bundled embedding: `bundle_emb.<trigger>.clip_l` / `clip_g` for SDXL, `.emb_params` for SD 1.5.
Read here, so that a checkpoint draws with its trigger's vectors as the released embedding file
does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bioart_pipeline.models.families import family_of

if TYPE_CHECKING:
    import torch

BUNDLE_PREFIX = "bundle_emb."


def split_bundle(tensors: dict[str, torch.Tensor]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """(the LoRA's own tensors, {embedding name: {key: vectors}}) of a checkpoint file."""
    lora = {k: v for k, v in tensors.items() if not k.startswith(BUNDLE_PREFIX)}
    embeddings: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if key.startswith(BUNDLE_PREFIX):
            name, vector_key = key.removeprefix(BUNDLE_PREFIX).split(".", 1)
            embeddings.setdefault(name, {})[vector_key] = tensor
    return lora, embeddings


def load_embeddings(pipe, embeddings: dict[str, dict[str, torch.Tensor]]) -> list[str]:
    """Load each bundled embedding into its text encoders under its name, as a user loads the
    released file; returns the names (for `unload_embeddings`)."""
    family = family_of(pipe)
    for name, vectors in embeddings.items():
        for encoder_name, tokenizer_name in zip(family.text_encoders, family.tokenizers,
                                                strict=True):
            pipe.load_textual_inversion(vectors[family.embedding_keys[encoder_name]], token=name,
                                        text_encoder=getattr(pipe, encoder_name),
                                        tokenizer=getattr(pipe, tokenizer_name))
    return list(embeddings)


def unload_embeddings(pipe, names: list[str]) -> None:
    family = family_of(pipe)
    for encoder_name, tokenizer_name in zip(family.text_encoders, family.tokenizers,
                                            strict=True):
        tokenizer = getattr(pipe, tokenizer_name)
        tokens = [t for name in names for t in tokenizer.get_vocab()
                  if t == name or re.fullmatch(rf"{re.escape(name)}_\d+", t)]
        if tokens:
            pipe.unload_textual_inversion(tokens=tokens, tokenizer=tokenizer,
                                          text_encoder=getattr(pipe, encoder_name))
