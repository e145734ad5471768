"""The real CLIP BPE tokenizer, written offline from the vocabulary open_clip ships.

SDXL's two tokenizers are both OpenAI CLIP's BPE (49,408 tokens); they differ only in
the pad token. open_clip bundles the BPE merges, so no model hub is needed.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

from bioart_pipeline.common.files import atomic_dir

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
VOCAB_SIZE = 49408
MODEL_MAX_LENGTH = 77
# Merges are lines 1 .. 49152-256-2 of the BPE file (line 0 is a version header).
_N_MERGES = 49152 - 256 - 2
_BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"  # open_clip.tokenizer.default_bpe()


def clip_merges() -> list[str]:
    """The CLIP merges, as 'a b' strings, in rank order. The file is found without importing
    open_clip: its import pulls in torch, timm and wandb (seconds of the captions step)."""
    package = importlib.util.find_spec("open_clip").submodule_search_locations[0]
    with gzip.open(Path(package) / _BPE_FILE, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    return lines[1 : _N_MERGES + 1]


def clip_vocab(merges: list[str]) -> dict[str, int]:
    """Token -> id, built exactly as CLIP's SimpleTokenizer builds it."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's, as CLIP's

    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}


def _tokenizer_config(pad_token: str) -> dict:
    # Mirrors SDXL base's tokenizer_config.json. model_max_length must be stored here:
    # without it the loaded tokenizer has an "infinite" max length and the SDXL
    # pipeline's padding="max_length" overflows the 77 text positions.
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": pad_token,
        "do_lower_case": True,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
        "errors": "replace",
    }


def clip_token_counter(models_dir: Path) -> Callable[[str], int]:
    """Counts a caption's tokens as SDXL's text encoders see them (CLIP's BPE, without the
    start and end tokens): what must fit in MODEL_MAX_LENGTH - 2. Built offline, once."""
    from transformers import CLIPTokenizer

    folder = Path(models_dir) / "clip_tokenizer"
    if not folder.is_dir():
        with atomic_dir(folder) as tmp:  # concurrent partitions never read a half-written one
            write_clip_tokenizer(tmp)
    # no length limit here: this counts, it never feeds a model (and so never warns)
    tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=1 << 30)
    return lambda text: len(tokenizer(text, truncation=False).input_ids) - 2


def write_clip_tokenizer(folder: Path, pad_token: str = EOS) -> Path:
    """Write vocab.json, merges.txt and the tokenizer config into `folder`.

    pad_token: "<|endoftext|>" as SDXL's `tokenizer`, "!" as its `tokenizer_2`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merges = clip_merges()
    vocab = clip_vocab(merges)
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    config = _tokenizer_config(pad_token)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return folder
