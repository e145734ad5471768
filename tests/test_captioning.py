"""Captions: Florence-2 through the real backend on a tiny model, terminology, assembly,
the artist's sidecar, edits kept across runs, and the caption cache."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import torch
import yaml

from bioart_pipeline.captioning.assembly import (
    CaptionRules,
    assemble_artist_caption,
    assemble_model_caption,
)
from bioart_pipeline.captioning.florence import (
    TINY_FLORENCE_SOURCE,
    CaptionerSettings,
    Florence2Captioner,
)
from bioart_pipeline.captioning.terminology import load_terminology
from bioart_pipeline.models.clip_tokenizer import clip_token_counter
from bioart_pipeline.orchestration.assets.captioning import captions_asset
from bioart_pipeline.orchestration.assets.portfolio import raw_portfolio
from bioart_pipeline.orchestration.assets.preprocessing import preprocessed_images
from bioart_pipeline.orchestration.compute import LocalCompute
from bioart_pipeline.orchestration.resources import CaptionModel, StudioData
from tests.conftest import SAMPLE_DATA, drawing, quick_spec

captions = captions_asset(pool=None)

TERMS = load_terminology(SAMPLE_DATA / "terminology.yaml")


def _rules(lora_type: str) -> CaptionRules:
    return CaptionRules(trigger="trig", lora_type=lora_type, terminology=TERMS,
                        subject_tags=("mitochondrion",), style_tags=("flat vector illustration",))


# --- the backend ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory: pytest.TempPathFactory) -> Florence2Captioner:
    settings = CaptionerSettings(model=TINY_FLORENCE_SOURCE, batch_size=3, max_new_tokens=16,
                                 num_beams=2)
    return Florence2Captioner(settings, tmp_path_factory.mktemp("models"),
                              torch.device("cpu"), torch.float32)


def test_tiny_florence_captions_in_batches_without_special_tokens(
        tiny_captioner: Florence2Captioner) -> None:
    images = [drawing(seed, size=(200 + 16 * seed, 180)) for seed in range(5)]
    batched = tiny_captioner.caption(images)  # batches of 3 and 2
    assert len(batched) == 5 and all(isinstance(c, str) and c for c in batched)
    for caption in batched:
        assert not any(token in caption for token in ("<pad>", "<s>", "</s>", "<image>"))
    one_by_one = [tiny_captioner.caption([image])[0] for image in images]
    assert batched == one_by_one


def test_only_caption_tasks_are_accepted() -> None:
    with pytest.raises(ValueError, match="caption task must be one of"):
        CaptionerSettings(model=TINY_FLORENCE_SOURCE, task="<OD>")


# --- terminology and assembly ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Wavy lines inside a bean shape", "cristae inside a mitochondrion"),
    ("two STACKED DISCS near the center circle", "two Golgi apparatus near the nucleus"),
    ("many small dots", "many ribosomes"),
    ("wavy linesmith and outer ringed", "wavy linesmith and outer ringed"),  # word boundaries
])
def test_terminology_replaces_whole_phrases_any_case_and_plural(text: str, expected: str
                                                               ) -> None:
    assert TERMS.apply(text)[0] == expected


def test_terminology_reports_what_fired() -> None:
    _, fired = TERMS.apply("a bean shape with wavy lines")
    assert set(fired) == {"bean shape -> mitochondrion", "wavy lines -> cristae"}


def test_subject_caption_keeps_terms_and_orders_tags() -> None:
    assembled, _ = assemble_model_caption(
        "The image shows a cutaway of a bean shape with wavy lines in flat vector style, "
        "with text labels", _rules("subject"), composited=True)
    assert assembled.caption == (
        "trig, mitochondrion, a cutaway of a mitochondrion with cristae in flat vector style, "
        "with text labels, cross-section, flat vector illustration, white background")


def test_style_caption_describes_content_without_style_words() -> None:
    assembled, _ = assemble_model_caption("a flat vector cartoon of a center circle with a logo",
                                          _rules("style"), composited=False)
    caption = assembled.caption
    assert caption == "trig, mitochondrion, a nucleus with a logo, watermark"
    assert "flat vector" not in caption and "illustration" not in caption


@pytest.mark.parametrize(("text", "expected"), [
    ("a flat vector illustration of a cell with a nucleus", "a cell with a nucleus"),
    ("A cell membrane in a flat design style, blue and orange", "A cell membrane, blue and orange"),
    ("a Golgi apparatus, clip-art, on white", "a Golgi apparatus, on white"),
    ("an illustration of a ribosome in cartoon style", "an illustration of a ribosome"),
])
def test_style_phrases_go_whole(text: str, expected: str) -> None:
    assert TERMS.strip_style(text) == expected


def test_artist_caption_is_kept_word_for_word() -> None:
    rules = _rules("subject")
    text = "Mitochondrion, wavy lines drawn by hand"
    assert assemble_artist_caption(text, rules, composited=False).caption == f"trig, {text}"
    assert assemble_artist_caption(text, rules, composited=False, trigger=False).caption == text
    grey = CaptionRules(**{**rules.__dict__, "background": "#808080"})
    assert assemble_artist_caption(text, grey, composited=True).caption.endswith(
        "simple background")


LONG = " ".join(f"fold {i} of the inner membrane" for i in range(30))  # ~180 CLIP tokens


def test_a_caption_too_long_for_clip_keeps_trigger_and_tags_and_reports_the_cut(
        models_dir: Path) -> None:
    count = clip_token_counter(models_dir)
    rules = CaptionRules(**{**_rules("subject").__dict__, "count_tokens": count,
                            "max_tokens": 75})
    artist = assemble_artist_caption(LONG, rules, composited=True)
    assert count(LONG) > 150 and count(artist.caption) <= 75
    assert artist.caption.startswith("trig, fold 0 ")
    assert artist.caption.endswith(", white background")  # the tag survives, not the words
    kept = artist.caption.removeprefix("trig, ").removesuffix(", white background")
    assert f"{kept} {artist.truncated}" == LONG  # exactly the words cut, in order
    model, _ = assemble_model_caption(f"a cutaway of a bean shape, {LONG}", rules,
                                      composited=False)
    assert count(model.caption) <= 75 and model.truncated
    assert model.caption.startswith("trig, mitochondrion, a cutaway of a mitochondrion")
    assert model.caption.endswith(", cross-section, flat vector illustration")
    short = assemble_artist_caption("Golgi apparatus", rules, composited=False)
    assert (short.caption, short.truncated) == ("trig, Golgi apparatus", "")


# --- the stage under Dagster ----------------------------------------------------------------

@pytest.fixture
def studio(tmp_path: Path) -> StudioData:
    """Three drawings, the second with an artist sidecar, the third transparent."""
    data = tmp_path / "data"
    folder = data / "portfolio"
    folder.mkdir(parents=True)
    drawing(1).save(folder / "a.png")
    drawing(2).save(folder / "b.png")
    (folder / "b.txt").write_text("Golgi apparatus, hand-drawn cisternae")
    icon = drawing(3, mode="RGBA")
    icon.save(folder / "c.png")
    (folder / "_default.license.yaml").write_text("license: LicenseRef-Own-Work\n"
                                                  "author: Cellula Studio\n")
    (data / "loras").mkdir()
    spec = quick_spec("caps", type="subject", captions={"subject_tags": ["organelle"]})
    (data / "loras" / "caps.yaml").write_text(yaml.safe_dump(spec))
    (data / "terminology.yaml").write_text((SAMPLE_DATA / "terminology.yaml").read_text())
    return StudioData(data_dir=str(data), outputs_dir=str(tmp_path / "outputs"))


def _caption_run(studio: StudioData, models_dir: Path) -> tuple[pd.DataFrame, dict]:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", ["caps"])
    captioner = CaptionModel(model=TINY_FLORENCE_SOURCE, max_new_tokens=12, num_beams=1)
    result = dg.materialize(
        [raw_portfolio, preprocessed_images, captions], partition_key="caps", instance=instance,
        resources={"studio": studio, "captioner": captioner, "compute": LocalCompute()})
    meta = result.asset_materializations_for_node("captions")[0].metadata
    table = pd.read_parquet(studio.workspace.table("captions", "caps")).set_index("path")
    return table, meta


ORIGIN = f"{TINY_FLORENCE_SOURCE} <MORE_DETAILED_CAPTION> terms:{TERMS.version}"


def test_sidecar_wins_model_captions_the_rest(studio: StudioData, models_dir: Path) -> None:
    table, meta = _caption_run(studio, models_dir)
    assert table.at["portfolio/b.png", "origin"] == "artist"
    assert table.at["portfolio/b.png", "caption"] == \
        "cellulastyle, Golgi apparatus, hand-drawn cisternae"
    for image in ("portfolio/a.png", "portfolio/c.png"):
        assert table.at[image, "origin"] == ORIGIN
        assert table.at[image, "caption"].startswith("cellulastyle, organelle, ")
    assert table.at["portfolio/c.png", "caption"].endswith(", white background")
    assert not table.at["portfolio/a.png", "caption"].endswith("background")
    assert meta["model_captioned_now"].value == 2
    assert meta["origins"].value == {ORIGIN: 2, "artist": 1}


def test_edit_survives_rerun_until_its_image_changes(studio: StudioData,
                                                     models_dir: Path) -> None:
    first, _ = _caption_run(studio, models_dir)
    edit = Path(studio.outputs_dir) / "captions" / "caps" / "edit" / "portfolio" / "a.txt"
    assert edit.read_text().strip() == first.at["portfolio/a.png", "caption"]
    edit.write_text("cellulastyle, organelle, a mitochondrion with cristae, drawn by hand\n")

    second, meta = _caption_run(studio, models_dir)
    assert second.at["portfolio/a.png", "caption"] == \
        "cellulastyle, organelle, a mitochondrion with cristae, drawn by hand"
    assert second.at["portfolio/a.png", "origin"] == "edited"
    assert second.at["portfolio/a.png", "generated_by"] == ORIGIN
    assert meta["edits_kept"].value == 1
    assert meta["model_captioned_now"].value == 0  # the cache answered for a.png and c.png

    drawing(42).save(Path(studio.data_dir) / "portfolio" / "a.png")  # the artist redraws it
    third, meta = _caption_run(studio, models_dir)
    assert third.at["portfolio/a.png", "origin"] == ORIGIN
    assert "drawn by hand" not in third.at["portfolio/a.png", "caption"]
    assert "drawn by hand" in str([r.data for r in meta["edits_replaced"].records])
    assert meta["model_captioned_now"].value == 1  # only the changed image
    assert edit.read_text().strip() == third.at["portfolio/a.png", "caption"]


def test_without_sidecar_or_model_the_step_says_what_to_configure(
        studio: StudioData) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", ["caps"])
    result = dg.materialize([raw_portfolio, preprocessed_images, captions], partition_key="caps",
                            instance=instance, raise_on_error=False,
                            resources={"studio": studio, "captioner": CaptionModel(),
                                       "compute": LocalCompute()})
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "2 image(s) have no caption sidecar" in message and "BIOART_CAPTION_MODEL" in message


def test_a_too_long_artist_caption_is_cut_to_fit_and_reported(studio: StudioData,
                                                              models_dir: Path) -> None:
    (Path(studio.data_dir) / "portfolio" / "b.txt").write_text(LONG)
    table, meta = _caption_run(studio, models_dir)
    row = table.loc["portfolio/b.png"]
    assert row["caption"].startswith("cellulastyle, fold 0 of the inner membrane")
    assert row["tokens"] <= 75 and LONG.endswith(row["truncated"])
    assert (table.drop("portfolio/b.png")["truncated"] == "").all()
    assert meta["truncated_captions"].value == 1
    assert [r.data["path"] for r in meta["captions_over_the_token_limit"].records] == [
        "portfolio/b.png"]
