"""Scores per XY cell and the recommendation rule.

The rule (also written into the asset metadata): a (checkpoint, weight) cell is usable when
  - style is present: its palette is closer to the training set than the base model's
    (style_gain > min_style_gain),
  - it is not memorized: no image is nearly a training image (memorization < max_memorization)
    and the LoRA has not pulled its images towards training images far beyond where the base
    model's images for the same prompt and seed lie (memorization_gain < max_memorization_gain),
  - it stays flexible: seeds still differ (diversity >= min_diversity_ratio x base diversity),
  - it does not bleed: prompts without the trigger change less than prompts with it
    (bleeding_ratio < max_bleeding_ratio),
  - every subject keeps its structure: on each prompt with the trigger, the LoRA's images keep
    the layout of the base model's images for the same seeds (structure >= min_structure,
    the lowest prompt's mean over seeds): a neuron whose dendrites melt into a blob, a cell
    redrawn as the training set's mitochondrion, a prompt answered with a training image all
    move the ink away from where the base put it. A subject LoRA redraws its subject by design,
    so its default bar is lower (SUBJECT_MIN_STRUCTURE),
  - with a real CLIP model configured, the subject stays coherent: the CLIP score of the
    trigger prompts keeps at least min_clip_score_ratio of the base model's.
The recommended checkpoint has the most usable weights (ties: larger mean style gain, then the
earlier epoch); its usable weights form the weight range; the recommended weight is the usable
weight with the largest style gain.

How the model-free measures were tuned (on the pretrained tiny base, the sample portfolio):
  - palette distance is a sliced Wasserstein distance in Lab, so that cream paper, white and
    pastel pink count as different colours: the demo style LoRA brings it from 9.8 to 5.8
    (weight 1.2).
  - memorization alone cannot tell a redraw from a sibling: the studio's own series (whole
    cell 01..05) correlate at up to 0.90, while a LoRA trained 200 epochs on one image redraws
    it at 0.67-0.82. Its gain over the base is what separates them: +0.39..+0.65 for those
    redraws (+0.36..+0.40 for three images trained 200 epochs, at weights 1.0-1.2), at most
    +0.16 for the demo's healthy style and subject LoRAs; 0.3 sits between.
  - structure is the correlation of blurred ink maps (how far each pixel lies from the paper
    colour, metrics.ink_map): colour-blind, so a restyled subject keeps it, and blurred to 3 %
    of the side, so line weight does not count. On the demo style LoRA the neuron prompt reads
    0.74-0.78 at weight 0.4 (both checkpoints) and 0.58-0.64 from 0.6 on, where seed 2's neuron
    is redrawn elsewhere and at epoch 30, weight 1.2 seed 1's dendrites melt into a blob; the
    cell prompt stays above 0.75, though at epoch 15 from weight 0.6 its seed 2 becomes a
    mitochondrion (0.63). 0.7 sits between. The demo subject LoRAs, which replace the base's
    idea of a mitochondrion with the studio's, read 0.57-0.75 on their prompts: 0.5 for
    subjects. The Flux demo style LoRA keeps 0.85-0.98.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from PIL import Image

from bioart_pipeline.evaluation import metrics
from bioart_pipeline.evaluation.clip_scores import ClipScorer, clip_score
from bioart_pipeline.specs.thresholds import Thresholds

BASE_LABEL = "base"  # the column rendered without any LoRA


def score_cells(images: pd.DataFrame, training: list[Image.Image], trigger: str,
                clip: ClipScorer | None = None) -> pd.DataFrame:
    """One row per (checkpoint, weight), base included, with every measure (CLIP columns
    only when a CLIP model is given)."""
    train_palette = metrics.palette(training)
    references = metrics.reference_vectors(training)
    loaded = {f: Image.open(f).convert("RGB") for f in images["file"]}
    clip_measures = _ClipMeasures(clip, loaded, training, images) if clip else None
    base = images[images["checkpoint"] == BASE_LABEL]
    per_prompt = []
    for (label, weight, p_index), cell in images.groupby(["checkpoint", "weight",
                                                          "prompt_index"]):
        files = list(cell.sort_values("seed")["file"])
        pics = [loaded[f] for f in files]
        base_pics = [loaded[f] for f in base[base["prompt_index"] == p_index]
                     .sort_values("seed")["file"]]
        prompt = cell["prompt"].iloc[0]
        nearest = [metrics.nearest_similarity(p, references) for p in pics]
        base_nearest = [metrics.nearest_similarity(p, references) for p in base_pics]
        per_prompt.append({
            "checkpoint": label, "weight": weight, "prompt_index": p_index,
            "has_trigger": trigger in prompt,
            "palette_distance": metrics.palette_distance(metrics.palette(pics), train_palette),
            "memorization": max(nearest),
            "memorization_gain": float(np.mean(np.subtract(nearest, base_nearest))),
            "diversity": metrics.diversity(pics),
            "change_vs_base": metrics.pixel_change(pics, base_pics),
            "structure": float(np.mean([metrics.structure_kept(p, b)
                                        for p, b in zip(pics, base_pics, strict=True)])),
            **(clip_measures.of(files, prompt) if clip_measures else {}),
        })
    return _summarise(pd.DataFrame(per_prompt))


class _ClipMeasures:
    """Every image, prompt and the training set embedded once."""

    def __init__(self, clip: ClipScorer, loaded: dict[str, Image.Image],
                 training: list[Image.Image], images: pd.DataFrame):
        files = list(loaded)
        self.images = dict(zip(files, clip.image_embeddings([loaded[f] for f in files]),
                               strict=True))
        prompts = sorted(set(images["prompt"]))
        self.prompts = dict(zip(prompts, clip.text_embeddings(prompts), strict=True))
        centroid = clip.image_embeddings(training).mean(0)
        self.centroid = centroid / centroid.norm()

    def of(self, files: list[str], prompt: str) -> dict[str, float]:
        return {
            "clip_score": float(np.mean([clip_score(self.images[f], self.prompts[prompt])
                                         for f in files])),
            "clip_training_similarity": float(np.mean([float(self.images[f] @ self.centroid)
                                                       for f in files])),
        }


def _summarise(per_prompt: pd.DataFrame) -> pd.DataFrame:
    base = per_prompt[per_prompt["checkpoint"] == BASE_LABEL]
    base_trig = base[base["has_trigger"]]
    base_palette = base_trig["palette_distance"].mean()
    base_diversity = base["diversity"].mean() or 1e-9
    with_clip = "clip_score" in per_prompt
    rows = []
    for (label, weight), cell in per_prompt.groupby(["checkpoint", "weight"], sort=False):
        trig, plain = cell[cell["has_trigger"]], cell[~cell["has_trigger"]]
        trigger_change = trig["change_vs_base"].mean()
        row = {
            "checkpoint": label, "weight": float(weight),
            "palette_distance": trig["palette_distance"].mean(),
            "style_gain": base_palette - trig["palette_distance"].mean(),
            "memorization": trig["memorization"].max(),
            "memorization_gain": trig["memorization_gain"].mean(),
            "diversity_ratio": cell["diversity"].mean() / base_diversity,
            "bleeding": plain["change_vs_base"].mean(),
            "trigger_change": trigger_change,
            "bleeding_ratio": plain["change_vs_base"].mean() / (trigger_change or 1e-9),
            "structure": trig["structure"].min(),
        }
        if with_clip:
            row.update({
                "clip_score": trig["clip_score"].mean(),
                "clip_score_ratio": trig["clip_score"].mean()
                / (base_trig["clip_score"].mean() or 1e-9),
                "clip_style_gain": trig["clip_training_similarity"].mean()
                - base_trig["clip_training_similarity"].mean(),
            })
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Criterion:
    name: str  # as a failing cell's verdict names it
    many: str  # "N cells ..." when no cell passes
    fails: Callable[[pd.DataFrame, Thresholds], pd.Series]


_CRITERIA = [
    _Criterion("no style gain", "show no style gain",
               lambda c, t: c["style_gain"] <= t.min_style_gain),
    _Criterion("memorized", "look memorized", lambda c, t: _memorized(c, t)),
    _Criterion("lost diversity", "lost diversity",
               lambda c, t: c["diversity_ratio"] < t.min_diversity_ratio),
    _Criterion("bleeds", "bleed", lambda c, t: c["bleeding_ratio"] >= t.max_bleeding_ratio),
    _Criterion("lost structure", "lost the subject's structure",
               lambda c, t: c["structure"] < t.min_structure),
]
_CLIP = _Criterion("lost the subject (CLIP score)", "lost the subject (CLIP score)",
                   lambda c, t: c["clip_score_ratio"] < t.min_clip_score_ratio)


def _usable_span(grid: pd.Series, usable: pd.Series, chosen: float) -> list[float]:
    """The run of the checkpoint's consecutive grid weights around `chosen` that all pass:
    a range a user can rely on (a failing weight inside it would end it there)."""
    weights, ok = sorted(set(grid)), set(usable)
    low = high = weights.index(chosen)
    while low > 0 and weights[low - 1] in ok:
        low -= 1
    while high < len(weights) - 1 and weights[high + 1] in ok:
        high += 1
    return [float(weights[low]), float(weights[high])]


def _criteria(clip: ClipScorer | None) -> list[_Criterion]:
    return _CRITERIA + ([_CLIP] if clip is not None and clip.meaningful else [])


def judge_cells(scores: pd.DataFrame, thresholds: Thresholds, clip: ClipScorer | None = None
                ) -> pd.DataFrame:
    """`scores` with a `verdict` per cell: "pass", or "fail: " and every criterion of the rule
    it misses; the base column's verdict is "base"."""
    failed = pd.DataFrame({c.name: c.fails(scores, thresholds) for c in _criteria(clip)},
                          index=scores.index)
    verdicts = failed.apply(lambda row: "fail: " + ", ".join(row.index[row]) if row.any()
                            else "pass", axis=1)
    return scores.assign(verdict=verdicts.where(scores["checkpoint"] != BASE_LABEL, "base"))


def recommend(scores: pd.DataFrame, thresholds: Thresholds, clip: ClipScorer | None = None
              ) -> dict:
    """Apply the rule in the module docstring; `passes` is False when no cell is usable."""
    judged = judge_cells(scores, thresholds, clip)
    cells = judged[judged["checkpoint"] != BASE_LABEL]
    usable = cells[cells["verdict"] == "pass"]
    result = {"thresholds": asdict(thresholds), "usable_cells": int(len(usable)),
              "cells": int(len(cells)), "clip": _clip_status(clip)}
    if usable.empty:
        return {**result, "passes": False, "checkpoint": None, "weight": None,
                "weight_range": None, "reasoning": _why_none(cells, clip)}
    ranked = sorted(usable.groupby("checkpoint", sort=False),
                    key=lambda kv: (-len(kv[1]), -kv[1]["style_gain"].mean(), epoch_of(kv[0])))
    label, chosen = ranked[0]
    best = chosen.sort_values("style_gain", ascending=False).iloc[0]
    return {**result, "passes": True, "checkpoint": label, "weight": float(best["weight"]),
            "weight_range": _usable_span(cells[cells["checkpoint"] == label]["weight"],
                                        chosen["weight"], float(best["weight"])),
            "reasoning": [
                f"{label} has {len(chosen)} usable weight(s) of {cells['weight'].nunique()}, "
                "the most of any checkpoint",
                f"weight {best['weight']:.2f} brings the palette closest to the training set "
                f"(style gain {best['style_gain']:.3f})",
                f"memorization {best['memorization']:.3f} < {thresholds.max_memorization} "
                f"(gain over the base {best['memorization_gain']:+.3f} < "
                f"{thresholds.max_memorization_gain}), "
                f"diversity ratio {best['diversity_ratio']:.2f}, "
                f"bleeding ratio {best['bleeding_ratio']:.2f}, "
                f"structure {best['structure']:.2f} >= {thresholds.min_structure}",
                *([f"CLIP score ratio {best['clip_score_ratio']:.2f} of the base model's: "
                   "the subject stays coherent"] if _CLIP in _criteria(clip) else []),
            ]}


def _memorized(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    return ((cells["memorization"] >= t.max_memorization)
            | (cells["memorization_gain"] >= t.max_memorization_gain))


def _clip_status(clip: ClipScorer | None) -> str:
    if clip is None:
        return "not configured"
    if not clip.meaningful:
        return f"{clip.source}: random weights, scores recorded but not used"
    return f"{clip.source}: used in the rule"


def epoch_of(label: str) -> int:
    """The epoch a checkpoint label names ("epoch 10" -> 10); 0 for the base column."""
    digits = "".join(ch for ch in label if ch.isdigit())
    return int(digits) if digits else 0


def _why_none(cells: pd.DataFrame, clip: ClipScorer | None) -> list[str]:
    """How many cells fail each criterion."""
    return [f"{int(cells['verdict'].str.contains(c.name, regex=False).sum())} cells {c.many}"
            for c in _criteria(clip)]
