"""Captioning throughput, and what the caption cache saves on a rerun.

    .venv/bin/python benchmarks/captioning.py [--images 32]
    .venv/bin/python benchmarks/captioning.py --base   # Florence-2-base size, on a GPU

Default: the tiny Florence-2 through the real backend (processor, batched beam search,
decoding, post-processing): captions/s for a first run over N images, then a rerun over the
same images served by the cache, as a ratio to the first run.
--base: Florence-2-base (0.23 B parameters) built from its config with random weights (no
download), 768 px, batch 8, `<MORE_DETAILED_CAPTION>`-length generation (3 beams, 256 new
tokens forced): captions/s. The model never stops early with random weights, so this is
the slow end; real captions often end sooner.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from transformers import Florence2Config, Florence2ForConditionalGeneration

from bioart_pipeline.captioning.florence import (
    TINY_FLORENCE_SOURCE,
    CaptionerSettings,
    Florence2Captioner,
    cached_captions,
    store_captions,
)

from common import cuda_seconds, illustration


def tiny(count: int) -> None:
    settings = CaptionerSettings(model=TINY_FLORENCE_SOURCE, batch_size=8, max_new_tokens=64)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        files = {}
        for seed in range(count):
            files[f"k{seed}"] = tmp / f"{seed}.png"
            illustration(seed).save(files[f"k{seed}"])
        # loaded once, as in a caption job
        captioner = Florence2Captioner(settings, tmp / "models", torch.device("cpu"),
                                       torch.float32)

        def run() -> tuple[float, int]:
            started = time.perf_counter()
            _, todo = cached_captions(list(files), settings, tmp / "cache")
            if todo:
                texts = captioner.caption([Image.open(files[k]) for k in todo])
                store_captions(dict(zip(todo, texts, strict=True)), settings, tmp / "cache")
            return time.perf_counter() - started, len(todo)

        first, fresh = run()
        rerun, again = run()
    print(f"tiny Florence-2, {count} images, batch 8, 3 beams, up to 64 new tokens, "
          f"{torch.get_num_threads()} CPU threads:")
    print(f"  first run {first:.2f} s ({fresh / first:.1f} captions/s); rerun {rerun:.3f} s "
          f"({again} captioned): {rerun / first:.3f}x of the first run")


def base(batches: int) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("--base needs an NVIDIA GPU")
    config = Florence2Config(
        text_config={"model_type": "bart", "vocab_size": 51289, "d_model": 768,
                     "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 12,
                     "decoder_attention_heads": 12, "encoder_ffn_dim": 3072,
                     "decoder_ffn_dim": 3072, "max_position_embeddings": 1024},
        vision_config={"projection_dim": 768}, image_token_id=51288)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    model = Florence2ForConditionalGeneration(config).to("cuda", dtype).eval()
    batch, image_tokens = 8, (768 // 32) ** 2 + 1
    pixels = torch.randn(batch, 3, 768, 768, device="cuda", dtype=dtype)
    prompt = torch.randint(3, 50000, (batch, 12), device="cuda")
    input_ids = torch.cat([torch.full((batch, image_tokens), 51288, device="cuda"), prompt], 1)

    @torch.no_grad()
    def generate() -> None:
        model.generate(input_ids=input_ids, pixel_values=pixels, num_beams=3,
                       max_new_tokens=256, min_new_tokens=256, do_sample=False)

    per_batch = cuda_seconds(generate, batches)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"Florence-2-base size ({params:.2f} B parameters), {dtype}, batch {batch}, 768 px, "
          f"3 beams, 256 new tokens on {torch.cuda.get_device_name()}:")
    print(f"  {batch / per_batch:.2f} captions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--base", action="store_true")
    args = parser.parse_args()
    base(3) if args.base else tiny(args.images)


if __name__ == "__main__":
    main()
