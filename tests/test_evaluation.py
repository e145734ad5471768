"""XY-plot evaluation: the metrics move the right way on constructed cases, the rule picks the
right cell, the grid is laid out as labelled, and swapping adapters on one pipeline renders
what a fresh pipeline with each checkpoint renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from bioart_pipeline.common.tracking import Tracker
from bioart_pipeline.evaluation import metrics
from bioart_pipeline.evaluation.clip_scores import (
    TINY_CLIP_SOURCE,
    ClipScorer,
    ClipUnavailable,
    clip_score,
)
from bioart_pipeline.evaluation.scoring import (
    BASE_LABEL,
    Thresholds,
    judge_cells,
    recommend,
    score_cells,
)
from bioart_pipeline.evaluation.stage import RECOMMENDATION, SCORES, XYJob, evaluate
from bioart_pipeline.evaluation.xy_plot import (
    OUTLINE,
    Checkpoint,
    XYSettings,
    grid_images,
    grid_layout,
    render_xy,
)
from bioart_pipeline.orchestration.assets.evaluation import _scores_in_order
from bioart_pipeline.orchestration.metadata import table_value
from tests.conftest import drawing, random_lora_file, tiny_pipe

CPU = torch.device("cpu")

TRIGGER = "trig"
PIVOTAL = "zqxnucleusstyle"  # a pivotal-tuning trigger: no vocabulary entry has this name


def _recolour(image: Image.Image) -> Image.Image:
    return Image.fromarray(255 - np.asarray(image))  # every colour inverted


def _uncoloured(image: Image.Image) -> Image.Image:
    """The same drawing in greys: what a base model draws before the LoRA brings the look."""
    return image.convert("L").convert("RGB")


# --- metrics on constructed cases -----------------------------------------------------------

def test_an_output_equal_to_a_training_image_scores_as_memorized() -> None:
    training = [drawing(seed) for seed in range(4)]
    references = metrics.reference_vectors(training)
    assert metrics.nearest_similarity(training[2].copy(), references) == pytest.approx(1.0)
    assert metrics.nearest_similarity(drawing(99), references) < 0.9


def test_identical_outputs_score_zero_diversity() -> None:
    same = [drawing(5)] * 3
    assert metrics.diversity(same) == pytest.approx(0.0, abs=1e-9)
    assert metrics.diversity([drawing(5), drawing(6), drawing(7)]) > 0.3


def test_palette_distance_grows_with_colour_shift() -> None:
    images = [drawing(3), drawing(4)]
    palette = metrics.palette(images)
    same = metrics.palette_distance(palette, metrics.palette([i.copy() for i in images]))
    shifted = metrics.palette_distance(palette, metrics.palette([_recolour(i) for i in images]))
    assert same == pytest.approx(0.0) and shifted > 20  # Lab units: a plainly different palette


def test_palette_distance_tells_cream_paper_from_white() -> None:
    white, cream = Image.new("RGB", (64, 64), "white"), Image.new("RGB", (64, 64), (241, 233, 214))
    pink = Image.new("RGB", (64, 64), (246, 214, 222))
    to_white = metrics.palette([white])
    assert metrics.palette_distance(metrics.palette([cream]), to_white) > 5
    assert metrics.palette_distance(metrics.palette([pink]), to_white) > 5


def test_change_versus_base_is_zero_for_the_base_itself() -> None:
    base = [drawing(1), drawing(2)]
    assert metrics.pixel_change([b.copy() for b in base], base) == 0.0
    assert metrics.pixel_change([_recolour(b) for b in base], base) > 0.5


PAPER = (241, 233, 214)


def _neuron(colour: tuple[int, int, int], line: int, centre: tuple[int, int] = (128, 128),
            soma: int = 18) -> Image.Image:
    """A soma and six dendrites on cream paper."""
    image = Image.new("RGB", (256, 256), PAPER)
    draw = ImageDraw.Draw(image)
    x, y = centre
    for dx, dy in ((-90, -80), (-100, 10), (-40, 100), (60, 95), (110, -10), (30, -105)):
        draw.line([(x, y), (x + dx, y + dy)], fill=colour, width=line)
    draw.ellipse([x - soma, y - soma, x + soma, y + soma], fill=colour)
    return image


def _blob(colour: tuple[int, int, int], box: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", (256, 256), PAPER)
    ImageDraw.Draw(image).ellipse(box, fill=colour, outline=(90, 40, 20), width=5)
    return image


def test_structure_survives_a_new_palette_and_line_weight_but_not_a_melted_subject() -> None:
    base = _neuron((120, 130, 200), line=5)
    restyled = _neuron((220, 110, 40), line=9)  # the style LoRA's orange, heavier lines
    melted = _blob((200, 150, 80), (40, 50, 200, 190))  # the soma gone, one blob
    replaced = _blob((230, 200, 120), (150, 150, 240, 215))  # a mitochondrion in a corner
    assert metrics.structure_kept(base.copy(), base) == pytest.approx(1.0)
    assert metrics.structure_kept(restyled, base) > 0.85
    assert metrics.structure_kept(melted, base) < Thresholds().min_structure
    assert metrics.structure_kept(replaced, base) < 0.3
    blank = Image.new("RGB", (256, 256), PAPER)
    assert metrics.structure_kept(blank, blank.copy()) == 1.0
    assert metrics.structure_kept(blank, base) == 0.0


def test_a_cell_that_loses_the_structure_fails_by_name_and_subjects_have_a_lower_bar() -> None:
    scores = pd.DataFrame([
        {"checkpoint": "epoch 5", "weight": w, "style_gain": 0.1 * w, "memorization": 0.5,
         "memorization_gain": 0.0, "diversity_ratio": 1.0, "bleeding_ratio": 0.2,
         "structure": structure}
        for w, structure in ((0.6, 0.9), (0.8, 0.75), (1.0, 0.62), (1.2, 0.45))])
    verdicts = list(judge_cells(scores, Thresholds())["verdict"])
    assert verdicts == ["pass", "pass", "fail: lost structure", "fail: lost structure"]
    style = recommend(scores, Thresholds())
    assert style["weight"] == 0.8 and style["weight_range"] == [0.6, 0.8]
    assert "structure 0.75 >= 0.7" in style["reasoning"][-1]
    subject = recommend(scores, Thresholds.for_type("subject"))
    assert subject["weight"] == 1.0 and subject["weight_range"] == [0.6, 1.0]
    assert Thresholds.for_type("subject", min_structure=0.8).min_structure == 0.8
    none = recommend(scores.assign(structure=0.1), Thresholds())
    assert "4 cells lost the subject's structure" in none["reasoning"]


# --- the recommendation rule ---------------------------------------------------------------

def _cells(tmp_path: Path, outputs: dict[str, tuple[list[Image.Image], list[Image.Image]]]
           ) -> pd.DataFrame:
    """An XY image table: per checkpoint, (images for the trigger prompt, for the plain one)."""
    rows = []
    for label, (with_trigger, plain) in outputs.items():
        weight = 0.0 if label == BASE_LABEL else 1.0
        for p_index, (prompt, images) in enumerate(((f"{TRIGGER}, a cell", with_trigger),
                                                    ("a cell", plain))):
            for seed, image in enumerate(images):
                file = tmp_path / f"{label.replace(' ', '')}_{p_index}_{seed}.png"
                image.save(file)
                rows.append({"prompt_index": p_index, "prompt": prompt, "checkpoint": label,
                             "weight": weight, "seed": seed, "file": str(file)})
    return pd.DataFrame(rows)


def test_rule_refuses_the_memorized_checkpoint_and_picks_the_one_with_the_style(
        tmp_path: Path) -> None:
    training = [drawing(seed) for seed in range(4)]
    styled = [drawing(seed) for seed in (20, 21, 22)]  # the look, new pictures
    base = [_uncoloured(image) for image in styled]  # the same pictures without it
    images = _cells(tmp_path, {
        BASE_LABEL: (base, base),
        "epoch 5": (training[:3], base),  # outputs are training images: memorized
        "epoch 10": (styled, base),
    })
    scores = score_cells(images, training, TRIGGER).set_index("checkpoint")
    assert scores.at["epoch 5", "memorization"] == pytest.approx(1.0)
    assert scores.at["epoch 10", "memorization"] < 0.95
    assert scores.at["epoch 10", "style_gain"] > 0 and scores.at["epoch 10", "bleeding"] == 0

    chosen = recommend(scores.reset_index(), Thresholds())
    assert chosen["passes"] and chosen["checkpoint"] == "epoch 10"
    assert chosen["weight_range"] == [1.0, 1.0] and chosen["usable_cells"] == 1
    verdicts = judge_cells(scores.reset_index(), Thresholds()).set_index("checkpoint")["verdict"]
    assert verdicts.to_dict() == {BASE_LABEL: "base",
                                  "epoch 5": "fail: memorized, lost structure",
                                  "epoch 10": "pass"}
    assert scores.at["epoch 10", "structure"] > 0.9 > 0.5 > scores.at["epoch 5", "structure"]


def test_the_scores_table_orders_checkpoints_by_epoch_and_marks_the_recommendation() -> None:
    scores = pd.DataFrame({"checkpoint": ["epoch 10", "base", "epoch 5", "epoch 15", "epoch 5"],
                           "weight": [0.5, 0.0, 1.0, 0.5, 0.5], "verdict": "pass",
                           "style_gain": [0.123456, 0.0, 1.0, 2.0, 3.0]})
    table = table_value(_scores_in_order(scores, {"checkpoint": "epoch 5", "weight": 1.0}))
    rows = [(r.data["checkpoint"], r.data["weight"], r.data["recommended"])
            for r in table.records]
    assert rows == [("base", 0.0, False), ("epoch 5", 0.5, False), ("epoch 5", 1.0, True),
                    ("epoch 10", 0.5, False), ("epoch 15", 0.5, False)]
    assert table.records[3].data["style_gain"] == 0.123
    assert [c.type for c in table.schema.columns][:4] == ["string", "float", "string", "bool"]


def test_rule_fails_when_every_cell_bleeds(tmp_path: Path) -> None:
    training = [drawing(seed) for seed in range(4)]
    styled = [drawing(seed) for seed in (20, 21, 22)]
    base = [_uncoloured(image) for image in styled]
    images = _cells(tmp_path, {BASE_LABEL: (base, base), "epoch 5": (styled, styled)})
    chosen = recommend(score_cells(images, training, TRIGGER), Thresholds())
    assert not chosen["passes"] and chosen["checkpoint"] is None
    assert "1 cells bleed" in chosen["reasoning"]


# --- the grid -------------------------------------------------------------------------------

def test_each_prompt_gets_a_legible_grid_with_the_recommended_cell_framed(
        tmp_path: Path) -> None:
    colours = {(BASE_LABEL, 0.0): (0, 0, 0), ("epoch 5", 0.5): (255, 0, 0),
               ("epoch 5", 1.0): (0, 255, 0), ("epoch 10", 0.5): (0, 0, 255),
               ("epoch 10", 1.0): (255, 255, 0)}
    prompts = {0: "short prompt", 1: "a much longer prompt " * 8}
    rows = []
    for p_index, prompt in prompts.items():
        for (label, weight), colour in colours.items():
            file = tmp_path / f"{p_index}_{label}_{weight}.png"
            Image.new("RGB", (64, 64), colour).save(file)
            rows.append({"prompt_index": p_index, "prompt": prompt, "checkpoint": label,
                         "weight": weight, "seed": 1, "file": str(file)})
    checkpoints, weights = ["epoch 5", "epoch 10"], (0.5, 1.0)
    grids = grid_images(pd.DataFrame(rows), checkpoints, weights, ("epoch 10", 0.5), cell=160)
    assert list(grids) == [0, 1]
    for p_index, prompt in prompts.items():
        layout = grid_layout(prompt, checkpoints, weights, 160)
        grid = grids[p_index]
        assert grid.size == layout.size
        assert layout.font_size >= 16  # legible where a 160 px cell is
        texts = [text for text, _ in layout.labels]
        assert " ".join(texts[:-5]).split() == prompt.split()  # the whole prompt, wrapped
        assert texts[-5:] == ["base", "epoch 5", "epoch 10", "w 0.50", "w 1.00"]
        for (column, weight), (x, y) in layout.cells.items():
            expected = colours[(column, 0.0 if column == BASE_LABEL else weight)]
            assert grid.getpixel((x + 80, y + 80)) == expected, (p_index, column, weight)
        x, y = layout.cells[("epoch 10", 0.5)]
        assert grid.getpixel((x + 1, y + 80)) == OUTLINE  # framed
        x, y = layout.cells[("epoch 5", 0.5)]
        assert grid.getpixel((x + 1, y + 80)) == colours[("epoch 5", 0.5)]  # not framed
    long_layout = grid_layout(prompts[1], checkpoints, weights, 160)
    assert long_layout.size[1] > grid_layout(prompts[0], checkpoints, weights, 160).size[1]


# --- adapter swapping against fresh pipelines -----------------------------------------------

def test_adapter_swapping_renders_what_a_fresh_pipeline_renders(tmp_path: Path,
                                                                models_dir: Path) -> None:
    files = [random_lora_file(models_dir, tmp_path / f"epoch_{n}.safetensors", seed=n)
             for n in (1, 2)]
    settings = XYSettings(prompts=(f"{TRIGGER}, a nucleus",), weights=(0.5, 1.0), seeds=(3,),
                          steps=3, guidance_scale=5.0, size=128)
    pipe = tiny_pipe(models_dir)
    images = render_xy(pipe, [Checkpoint("epoch 1", files[0]), Checkpoint("epoch 2", files[1])],
                       settings, tmp_path / "xy")
    assert len(images) == 1 + 2 * 2  # base, then 2 checkpoints x 2 weights
    assert pipe.get_list_adapters() == {}  # every adapter removed again

    by_label = {"epoch 1": files[0], "epoch 2": files[1]}
    rendered = []
    for row in images.itertuples():
        fresh = tiny_pipe(models_dir)
        if row.checkpoint != BASE_LABEL:
            fresh.load_lora_weights(str(by_label[row.checkpoint]))
        expected = fresh(row.prompt, generator=torch.Generator("cpu").manual_seed(row.seed),
                         num_inference_steps=settings.steps,
                         guidance_scale=settings.guidance_scale, height=128, width=128,
                         cross_attention_kwargs={"scale": row.weight}).images[0]
        got = np.asarray(Image.open(row.file), dtype=np.int16)
        difference = np.abs(got - np.asarray(expected, dtype=np.int16)).max()
        assert difference <= 2, (row.checkpoint, row.weight, difference)  # 8-bit rounding
        rendered.append(got)
    assert all(np.abs(a - rendered[0]).max() > 10 for a in rendered[1:])  # LoRAs do change it


def _pivotal_checkpoint(models_dir: Path, path: Path, seed: int) -> Path:
    """A random LoRA with a random 2-vector embedding for PIVOTAL bundled in, as training
    writes a pivotal-tuning checkpoint."""
    from bioart_pipeline.models.families import FAMILIES
    from bioart_pipeline.training.pivotal import bundled

    random_lora_file(models_dir, path, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    rows = {"text_encoder": torch.randn(2, 32, generator=generator),
            "text_encoder_2": torch.randn(2, 64, generator=generator)}
    save_file({**load_file(str(path)), **bundled(PIVOTAL, rows, FAMILIES["sdxl"])}, str(path))
    return path


def test_pivotal_checkpoints_render_with_their_own_embedding_and_leave_none_behind(
        tmp_path: Path, models_dir: Path) -> None:
    """Each checkpoint's bundled embedding is loaded with it: its cells are what a fresh
    pipeline with that LoRA and embedding draws; the base row reads the trigger as plain text,
    and the pipeline ends with neither adapter nor token left."""
    from bioart_pipeline.generation.embeddings import load_embeddings, split_bundle

    files = [_pivotal_checkpoint(models_dir, tmp_path / f"epoch_{n}.safetensors", seed=n)
             for n in (1, 2)]
    settings = XYSettings(prompts=(f"{PIVOTAL}, a nucleus",), weights=(1.0,), seeds=(3,),
                          steps=3, guidance_scale=5.0, size=128)
    pipe = tiny_pipe(models_dir)
    vocabulary = len(pipe.tokenizer)
    images = render_xy(pipe, [Checkpoint("epoch 1", files[0]), Checkpoint("epoch 2", files[1])],
                       settings, tmp_path / "xy")
    assert pipe.get_list_adapters() == {}
    assert (len(pipe.tokenizer), len(pipe.tokenizer_2)) == (vocabulary, vocabulary)
    for row in images.itertuples():
        fresh = tiny_pipe(models_dir)
        if row.checkpoint != BASE_LABEL:
            lora, embeddings = split_bundle(load_file(str(files[int(row.checkpoint[-1]) - 1])))
            fresh.load_lora_weights(lora)
            load_embeddings(fresh, embeddings)
        expected = fresh(row.prompt, generator=torch.Generator("cpu").manual_seed(row.seed),
                         num_inference_steps=settings.steps,
                         guidance_scale=settings.guidance_scale, height=128, width=128).images[0]
        got = np.asarray(Image.open(row.file), dtype=np.int16)
        assert np.abs(got - np.asarray(expected, dtype=np.int16)).max() <= 2, row.checkpoint


def test_a_half_precision_grid_leaves_the_base_weights_bit_identical(tmp_path: Path,
                                                                     models_dir: Path) -> None:
    """Fusing and unfusing half-precision weights at every weight drifts them by rounding,
    so the base column would change under the grid; the base weights must not move at all."""
    files = [random_lora_file(models_dir, tmp_path / f"epoch_{n}.safetensors", seed=n)
             for n in (1, 2)]
    settings = XYSettings(prompts=(f"{TRIGGER}, a nucleus",), weights=(0.4, 0.8, 1.2),
                          seeds=(3,), steps=2, guidance_scale=5.0, size=128)
    pipe = tiny_pipe(models_dir).to(torch.bfloat16)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    render_xy(pipe, [Checkpoint(f"epoch {n}", f) for n, f in enumerate(files, 1)], settings,
              tmp_path / "xy")
    # Deleted adapters leave peft's wrapper behind: the same weight, named base_layer.
    after = {k.replace(".base_layer", ""): v for k, v in pipe.unet.state_dict().items()}
    assert set(after) == set(before)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, changed[:5]


def test_evaluation_writes_its_folder_and_logs_the_grid_to_offline_wandb(
        tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    lora = random_lora_file(models_dir, tmp_path / "epoch_1.safetensors", seed=1)
    settings = XYSettings(prompts=(f"{TRIGGER}, a nucleus", "a nucleus"), weights=(1.0,),
                          seeds=(1, 2), steps=2, guidance_scale=5.0, size=128)
    folder = tmp_path / "evaluation"
    tracker = Tracker("offline", "bioart-test", folder, "xy", {"weights": [1.0]})
    evaluate(lambda: tiny_pipe(models_dir), [Checkpoint("epoch 1", lora)], settings,
             [drawing(seed) for seed in range(3)], TRIGGER, Thresholds(), folder, tracker)

    assert (folder / XYJob.done_file).exists() and XYJob.done_file == RECOMMENDATION
    assert len(pd.read_parquet(folder / SCORES)) == 2  # base + one checkpoint x one weight
    run = next(folder.glob("wandb/offline-run-*"))
    assert list(run.glob("files/media/images/xy_grid_*.png"))
    assert list(run.glob("files/media/table/xy_scores_*.table.json"))


# --- CLIP -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipScorer:
    return ClipScorer(TINY_CLIP_SOURCE, tmp_path_factory.mktemp("clip"), CPU, torch.float32)


def test_clip_scorer_embeds_through_open_clip(tiny_clip: ClipScorer) -> None:
    images = [drawing(1), drawing(2)]
    embeddings = tiny_clip.image_embeddings(images)
    assert embeddings.shape == (2, 32)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(2))
    assert float(embeddings[0] @ tiny_clip.image_embeddings([drawing(1)])[0]) == \
        pytest.approx(1.0, abs=1e-5)  # the same picture, the same embedding
    text = tiny_clip.text_embeddings([f"{TRIGGER}, a cell"])[0]
    assert 0.0 <= clip_score(embeddings[0], text) <= 100.0


def test_random_clip_scores_are_recorded_but_never_used(tmp_path: Path,
                                                        tiny_clip: ClipScorer) -> None:
    training = [drawing(seed) for seed in range(4)]
    styled = [drawing(s) for s in (20, 21, 22)]
    base = [_uncoloured(image) for image in styled]
    images = _cells(tmp_path, {BASE_LABEL: (base, base), "epoch 10": (styled, base)})
    scores = score_cells(images, training, TRIGGER, tiny_clip)
    assert {"clip_score", "clip_score_ratio", "clip_style_gain"} <= set(scores.columns)
    with_clip = recommend(scores, Thresholds(min_clip_score_ratio=1e9), tiny_clip)
    without = recommend(scores.drop(columns=["clip_score", "clip_score_ratio",
                                             "clip_style_gain"]), Thresholds())
    assert with_clip["clip"] == f"{TINY_CLIP_SOURCE}: random weights, scores recorded but not used"
    assert with_clip["checkpoint"] == without["checkpoint"] == "epoch 10"


def test_a_real_clip_drops_cells_that_lose_the_subject(tmp_path: Path,
                                                       tiny_clip: ClipScorer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiny_clip, "meaningful", True)  # stands in for a real CLIP's verdict
    scores = pd.DataFrame([
        {"checkpoint": "epoch 5", "weight": w, "style_gain": 0.1, "memorization": 0.5,
         "memorization_gain": 0.0, "structure": 1.0,
         "diversity_ratio": 1.0, "bleeding_ratio": 0.2, "clip_score_ratio": ratio}
        for w, ratio in ((0.6, 1.0), (0.8, 0.95), (1.0, 0.6))])
    chosen = recommend(scores, Thresholds(), tiny_clip)
    assert chosen["weight_range"] == [0.6, 0.8]  # incoherent at 1.0
    assert chosen["clip"].endswith("used in the rule")
    assert any("CLIP score ratio" in line for line in chosen["reasoning"])


def test_the_usable_range_stops_at_a_failing_weight() -> None:
    """Usable at 0.8 and 1.2 but bleeding at 1.0 (the demo subject LoRA once): the range
    reported around the chosen 1.2 is 1.2 alone, never 0.8-1.2 across the failing 1.0."""
    scores = pd.DataFrame([
        {"checkpoint": "epoch 30", "weight": w, "style_gain": gain, "memorization": 0.5,
         "memorization_gain": 0.0, "diversity_ratio": 1.0, "bleeding_ratio": bleeding,
         "structure": 1.0}
        for w, gain, bleeding in ((0.4, -0.5, 0.7), (0.8, 0.3, 0.9), (1.0, 0.8, 1.06),
                                  (1.2, 1.8, 0.97))])
    chosen = recommend(scores, Thresholds())
    assert chosen["weight"] == 1.2 and chosen["weight_range"] == [1.2, 1.2]
    scores.loc[scores["weight"] == 1.0, "bleeding_ratio"] = 0.95
    assert recommend(scores, Thresholds())["weight_range"] == [0.8, 1.2]


def test_clip_without_safetensors_is_refused_with_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "open_clip_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ClipUnavailable, match="pickled weights are refused.*BIOART_CLIP_MODEL"):
        ClipScorer(str(tmp_path / "clip"), tmp_path, CPU, torch.float32)
    with pytest.raises(ClipUnavailable, match="is not a folder"):
        ClipScorer(str(tmp_path / "missing"), tmp_path, CPU, torch.float32)
