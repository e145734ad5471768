"""Pivotal tuning: new token embeddings for the trigger, trained in every text encoder together
with the LoRA (as diffusers' advanced SDXL script and OneTrainer do).

The trigger becomes `count` new tokens named as diffusers names a multi-vector embedding
(`trigger`, `trigger_1`, ...), so a prompt with the trigger expands to all of them, in training
exactly as when the exported embedding is loaded with `load_textual_inversion(token=trigger)`.
Only the new rows train: the vocabulary's embedding matrix stays frozen and unsaved.

Checkpoints carry the vectors inside the LoRA file as A1111's bundled embedding
(`bundle_emb.<trigger>.clip_l` / `clip_g` for SDXL, `.emb_params` for SD 1.5); the release
splits them into a separate embedding file, the form ComfyUI and A1111 load.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save

from bioart_pipeline.common.files import atomic_write_bytes
from bioart_pipeline.generation.embeddings import BUNDLE_PREFIX
from bioart_pipeline.models.families import Family, family_of
from bioart_pipeline.specs.spec import check_trigger


class NewTokenEmbedding(torch.nn.Module):
    """A frozen token embedding plus trainable rows for the ids from `first_id` on."""

    def __init__(self, base: torch.nn.Embedding, first_id: int, rows: torch.Tensor):
        super().__init__()
        self.base, self.first_id = base, first_id
        self.new_rows = torch.nn.Parameter(rows.float())

    @property
    def weight(self) -> torch.Tensor:  # transformers reads the dtype and device from it
        return self.base.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        offset = input_ids - self.first_id
        is_new = (offset >= 0) & (offset < len(self.new_rows))
        base = self.base(torch.where(is_new, 0, input_ids))
        new = self.new_rows[offset.clamp(0, len(self.new_rows) - 1)].to(base.dtype)
        return torch.where(is_new[..., None], new, base)


def token_names(trigger: str, count: int) -> list[str]:
    """diffusers' names for a `count`-vector embedding loaded under `trigger`."""
    return [trigger] + [f"{trigger}_{i}" for i in range(1, count)]


def add_new_tokens(pipe, trigger: str, count: int, seed: int) -> dict[str, torch.nn.Parameter]:
    """Add the trigger's tokens to every tokenizer and trainable rows to every text encoder
    (drawn like the vocabulary's rows: normal with their std, seeded). Returns the rows by
    text encoder."""
    check_trigger(trigger)
    family = family_of(pipe)
    names = token_names(trigger, count)
    generator = torch.Generator().manual_seed(seed)
    rows = {}
    for encoder_name, tokenizer_name in zip(family.text_encoders, family.tokenizers,
                                            strict=True):
        tokenizer, encoder = getattr(pipe, tokenizer_name), getattr(pipe, encoder_name)
        taken = [name for name in names if name in tokenizer.get_vocab()]
        if taken:
            raise ValueError(f"the {tokenizer_name}'s vocabulary already has {taken}: diffusers "
                             "refuses to load an embedding under that name; pivotal tuning "
                             "needs a made-up trigger word")
        tokenizer.add_tokens(names)
        ids = tokenizer.convert_tokens_to_ids(names)
        if ids != list(range(ids[0], ids[0] + count)):  # NewTokenEmbedding maps a range
            raise ValueError(f"the {tokenizer_name} gave the new tokens ids {ids}, not "
                             "consecutive ones")
        embeddings = encoder.get_input_embeddings()
        std = embeddings.weight.float().std().item()
        init = torch.randn(count, embeddings.embedding_dim, generator=generator) * std
        module = NewTokenEmbedding(embeddings, ids[0], init.to(embeddings.weight.device))
        encoder.set_input_embeddings(module)
        rows[encoder_name] = module.new_rows
    return rows


def bundled(trigger: str, rows: dict[str, torch.Tensor], family: Family
            ) -> dict[str, torch.Tensor]:
    """The rows as A1111's bundled-embedding keys inside a LoRA file."""
    return {f"{BUNDLE_PREFIX}{trigger}.{family.embedding_keys[name]}":
            tensor.detach().float().cpu().contiguous() for name, tensor in rows.items()}


def write_embedding(path: Path, vectors: dict[str, torch.Tensor]) -> Path:
    """An embedding file as A1111 and ComfyUI read it (`clip_l` / `clip_g`, or `emb_params`),
    loaded under its file name."""
    return atomic_write_bytes(path, save({k: v.contiguous() for k, v in vectors.items()}))
