"""The built-in tiny models' versions and origins: what profiles, captioning and CLIP scoring
name as a source, and provenance records. Kept apart from their builders (tiny_*.py), which
import the model stack: the Dagster process reads these names and never loads a model.

Bump a version whenever its builder's configs, tokenizer or pretrained weights change: the
version names the cache folder, so a bump rebuilds it.
"""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent

TINY_VERSION = "tiny-sdxl-v3"  # tiny_sdxl.py and textbook_tiny/
TINY_ORIGIN = ("bioart textbook-tiny, pretrained by bioart_pipeline (`bioart build-base`) on a "
               "procedurally drawn corpus of generic textbook illustrations; no third-party "
               "images (bioart_pipeline/models/textbook_tiny/README.md)")
TINY_SD15_VERSION = "tiny-sd15-v3"  # tiny_sd15.py and textbook_tiny_sd15/
TINY_SD15_ORIGIN = ("bioart textbook-tiny SD 1.5, pretrained by bioart_pipeline (`bioart "
                    "build-base --family sd15`) on a procedurally drawn corpus of generic "
                    "textbook illustrations; no third-party images "
                    "(bioart_pipeline/models/textbook_tiny_sd15/README.md)")
# v3: v2's weights, the T5 vocabulary read from its committed file (was retrained per build)
TINY_FLUX_VERSION = "tiny-flux-v3"  # tiny_flux.py and textbook_tiny_flux/
TINY_FLUX_ORIGIN = ("bioart textbook-tiny Flux, pretrained by bioart_pipeline (`bioart "
                    "build-base --family flux`) on a procedurally drawn corpus of generic "
                    "textbook illustrations, with a T5-form tokenizer trained offline on its "
                    "captions (not T5's vocabulary); no third-party images "
                    "(bioart_pipeline/models/textbook_tiny_flux/README.md)")
TINY_CLIP_VERSION = "tiny-clip-v1"  # tiny_clip.py
TINY_FLORENCE_VERSION = "tiny-florence2-v1"  # tiny_florence.py

# The committed weights each built-in diffusion model is built from, with their build.json.
# The builder adds configs and seeded text encoders, both fixed by the version (every build
# checks the encoders against the digest build.json records), so these files' hash names the
# built weights without building them.
TEXTBOOK_TINY = MODELS_DIR / "textbook_tiny"  # tiny-sdxl's UNet and the VAE all three share
TEXTBOOK_TINY_SD15 = MODELS_DIR / "textbook_tiny_sd15"
TEXTBOOK_TINY_FLUX = MODELS_DIR / "textbook_tiny_flux"
BUILT_FROM = {
    TINY_VERSION: (TEXTBOOK_TINY,),
    TINY_SD15_VERSION: (TEXTBOOK_TINY_SD15, TEXTBOOK_TINY / "vae"),
    TINY_FLUX_VERSION: (TEXTBOOK_TINY_FLUX, TEXTBOOK_TINY / "vae",
                        MODELS_DIR / "tiny_flux_t5_vocabulary.json"),
}


def committed_files(version: str) -> list[Path]:
    """The weight files, build.json and other named files (a vocabulary) a built-in diffusion
    model is built from, sorted."""
    return sorted(f for source in BUILT_FROM[version]
                  for f in (source.rglob("*") if source.is_dir() else [source])
                  if not source.is_dir() or f.suffix == ".safetensors" or f.name == "build.json")
