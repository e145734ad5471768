"""The built-in tiny models' versions and origins: what profiles, captioning and CLIP scoring
name as a source, and provenance records. Kept apart from their builders (tiny_*.py), which
import the model stack: the Dagster process reads these names and never loads a model.

Bump a version whenever its builder's configs, tokenizer or pretrained weights change: the
version names the cache folder, so a bump rebuilds it.
"""

TINY_VERSION = "tiny-sdxl-v3"  # tiny_sdxl.py and textbook_tiny/
TINY_ORIGIN = ("bioart textbook-tiny, pretrained by bioart_pipeline (`bioart build-base`) on a "
               "procedurally drawn corpus of generic textbook illustrations; no third-party "
               "images (bioart_pipeline/models/textbook_tiny/README.md)")
TINY_SD15_VERSION = "tiny-sd15-v2"  # tiny_sd15.py and textbook_tiny_sd15/
TINY_SD15_ORIGIN = ("bioart textbook-tiny SD 1.5, pretrained by bioart_pipeline (`bioart "
                    "build-base --family sd15`) on a procedurally drawn corpus of generic "
                    "textbook illustrations; no third-party images "
                    "(bioart_pipeline/models/textbook_tiny_sd15/README.md)")
TINY_FLUX_VERSION = "tiny-flux-v2"  # tiny_flux.py and textbook_tiny_flux/
TINY_FLUX_ORIGIN = ("bioart textbook-tiny Flux, pretrained by bioart_pipeline (`bioart "
                    "build-base --family flux`) on a procedurally drawn corpus of generic "
                    "textbook illustrations, with a T5-form tokenizer trained offline on its "
                    "captions (not T5's vocabulary); no third-party images "
                    "(bioart_pipeline/models/textbook_tiny_flux/README.md)")
TINY_CLIP_VERSION = "tiny-clip-v1"  # tiny_clip.py
TINY_FLORENCE_VERSION = "tiny-florence2-v1"  # tiny_florence.py
