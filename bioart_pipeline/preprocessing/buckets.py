"""Aspect-ratio buckets: every image keeps its composition instead of a blind centre crop."""

from __future__ import annotations

import math
from functools import lru_cache


@lru_cache
def bucket_set(resolution: int, step: int) -> tuple[tuple[int, int], ...]:
    """(width, height) pairs of about resolution**2 pixels, sides multiples of `step`,
    from half to twice the resolution (SDXL: 512..2048 around 1024x1024)."""
    area = resolution * resolution
    low, high = resolution // 2, resolution * 2
    buckets = set()
    for width in range(low, high + 1, step):
        height = min(high, (area // width) // step * step)
        if height >= low:
            buckets.update({(width, height), (height, width)})
    return tuple(sorted(buckets))


def nearest_bucket(width: int, height: int, resolution: int, step: int) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to the image's (in log space, so 2:1 and 1:2
    are equally far from 1:1); ties go to the larger area."""
    aspect = math.log(width / height)
    return min(
        bucket_set(resolution, step),
        key=lambda b: (abs(math.log(b[0] / b[1]) - aspect), -b[0] * b[1]),
    )


def fit_to_bucket(width: int, height: int, bucket: tuple[int, int]
                  ) -> tuple[tuple[int, int], tuple[int, int, int, int], float]:
    """Resize size that covers the bucket, the centred trim box, and the trimmed fraction.

    The trim is only the sliver left by the aspect mismatch with the nearest bucket."""
    scale = max(bucket[0] / width, bucket[1] / height)
    resized = (max(bucket[0], round(width * scale)), max(bucket[1], round(height * scale)))
    left = (resized[0] - bucket[0]) // 2
    top = (resized[1] - bucket[1]) // 2
    box = (left, top, left + bucket[0], top + bucket[1])
    trimmed = 1.0 - (bucket[0] * bucket[1]) / (resized[0] * resized[1])
    return resized, box, trimmed
