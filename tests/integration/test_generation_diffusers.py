"""The diffusers image plugin on the real tiny FLUX pipeline: images, seeds, LoRAs, swaps, grids, cancellation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isengard.domain import ArtifactKind, LoraRef
from isengard.models.tiny import save_tiny_model
from isengard.plugins.api import JobCancelled, PluginError
from isengard.plugins.image.diffusers_flux import PIPELINES, DiffusersFluxGenerator, PipelineCache
from isengard.plugins.image.outputs import read_png_params
from tests.support.image_jobs import make_test_lora
from tests.support.recording_context import RecordingContext


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux")


@pytest.fixture(scope="module")
def lora_files(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    data_dir = tmp_path_factory.mktemp("lora-data")
    files = [
        make_test_lora(tiny_model, data_dir / "loras" / "char" / f"lora-{index}.safetensors", seed=index)
        for index in range(3)
    ]
    return data_dir, files


def _ref(data_dir: Path, path: Path, weight: float = 1.0) -> LoraRef:
    return LoraRef(lora_id=path.stem, path=path.relative_to(data_dir).as_posix(), weight=weight, name=path.stem)


def _run(ctx: RecordingContext, plugin: DiffusersFluxGenerator, **request: object) -> list[np.ndarray]:
    values: dict[str, object] = {"prompt": "a portrait", "width": 64, "height": 64, "steps": 3, "seed": 7}
    values.update(request)
    before = len(ctx.artifacts)
    plugin.run(ctx, values)
    return [np.asarray(Image.open(ctx.data_dir / a.path)) for a in ctx.artifacts[before:]]


def test_images_carry_their_parameters(tiny_model: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tiny_model)
    plugin = DiffusersFluxGenerator()
    summary = plugin.run(
        ctx,
        {"prompt": "a castle", "width": 64, "height": 80, "steps": 2, "guidance": 4.0, "num_images": 2,
         "trigger_word": "zxq", "character_id": None},
    )  # fmt: skip
    assert summary["images"] == 2
    assert len(ctx.artifacts) == 2
    seeds = summary["seeds"]
    assert seeds[1] == seeds[0] + 1  # recorded even though none was asked for
    for artifact, seed in zip(ctx.artifacts, seeds, strict=True):
        assert artifact.kind == ArtifactKind.OUTPUT
        path = tmp_path / artifact.path
        with Image.open(path) as image:
            assert image.size == (64, 80)
            assert image.text["seed"] == str(seed)
            assert image.text["steps"] == "2"
        params = read_png_params(path)
        assert params["prompt"] == "zxq, a castle"
        assert params["seed"] == seed
        assert params["guidance"] == 4.0
        assert params["plugin"] == "diffusers"
        assert params["base_model"]
        assert artifact.meta["thumbnail_path"].endswith(".webp")
        assert (tmp_path / artifact.meta["thumbnail_path"]).is_file()
    generating = [p for p in ctx.progress if p.stage == "generating"]
    assert [p.step for p in generating] == [1, 2, 3, 4]
    assert all(p.total == 4 for p in generating)


def test_fixed_seed_reproduces_exactly_and_seeds_differ(tiny_model: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tiny_model)
    plugin = DiffusersFluxGenerator()
    first = _run(ctx, plugin, seed=1234)[0]
    again = _run(ctx, plugin, seed=1234)[0]
    other = _run(ctx, plugin, seed=1235)[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_loras_change_the_output_and_swap_without_reloading_the_base(
    tiny_model: Path, lora_files: tuple[Path, list[Path]]
) -> None:
    data_dir, files = lora_files
    ctx = RecordingContext(data_dir, tiny_model)
    plugin = DiffusersFluxGenerator()
    base = _run(ctx, plugin)[0]
    loaded = PIPELINES.loaded
    assert loaded is not None
    pipe, transformer_id, loads = loaded.pipe, id(loaded.pipe.transformer), PIPELINES.loads

    with_a = _run(ctx, plugin, loras=[_ref(data_dir, files[0]).model_dump()])[0]
    with_b = _run(ctx, plugin, loras=[_ref(data_dir, files[1]).model_dump()])[0]
    with_a_again = _run(ctx, plugin, loras=[_ref(data_dir, files[0]).model_dump()])[0]
    half_a = _run(ctx, plugin, loras=[_ref(data_dir, files[0], weight=0.5).model_dump()])[0]
    both = _run(ctx, plugin, loras=[_ref(data_dir, f).model_dump() for f in files[:2]])[0]
    without = _run(ctx, plugin)[0]

    assert not np.array_equal(base, with_a)
    assert not np.array_equal(with_a, with_b)
    assert not np.array_equal(with_a, half_a)
    assert not np.array_equal(both, with_a) and not np.array_equal(both, with_b)
    assert np.array_equal(with_a, with_a_again)
    assert np.array_equal(base, without)  # switching LoRAs off gives back the base model exactly
    # One base pipeline the whole time; each LoRA file loaded once.
    assert PIPELINES.loaded is loaded and loaded.pipe is pipe
    assert id(loaded.pipe.transformer) == transformer_id
    assert PIPELINES.loads == loads
    assert ctx.artifacts[1].meta["loras"][0]["lora_id"] == files[0].stem


def test_recently_used_loras_stay_loaded_and_old_ones_are_evicted(
    tiny_model: Path, lora_files: tuple[Path, list[Path]]
) -> None:
    data_dir, files = lora_files
    cache = PipelineCache(max_loras=2)
    plugin = DiffusersFluxGenerator(cache=cache)
    ctx = RecordingContext(data_dir, tiny_model)
    for path in [files[0], files[1], files[0], files[2]]:
        _run(ctx, plugin, steps=1, loras=[_ref(data_dir, path).model_dump()])
    loaded = cache.loaded
    assert loaded is not None
    assert loaded.lora_loads == 3  # the repeat of files[0] was served from memory
    assert len(loaded.adapters) == 2
    resident = set(loaded.pipe.get_list_adapters().get("transformer", []))
    assert resident == set(loaded.adapters.values())  # files[1] (least recent) was deleted from the model
    assert cache.loads == 1


def test_trigger_word_rules_and_size_snapping(tiny_model: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tiny_model)
    plugin = DiffusersFluxGenerator()
    _run(ctx, plugin, prompt="photo of ZXQ smiling", trigger_word="zxq", width=70, height=100, steps=1)
    _run(ctx, plugin, prompt="a beach", trigger_word="zxq", add_trigger_word=False, steps=1)
    first, second = ctx.artifacts
    assert first.meta["prompt"] == "photo of ZXQ smiling"
    assert (first.meta["width"], first.meta["height"]) == (64, 96)
    assert "snapped" in first.meta["size_note"]
    assert any("snapped" in line.message for line in ctx.logs)
    assert second.meta["prompt"] == "a beach"


def test_trigger_placeholder_in_a_generation_prompt_becomes_the_trigger_word(tiny_model: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tiny_model)
    _run(ctx, DiffusersFluxGenerator(), prompt="[trigger] reading a book", trigger_word="ohwx_ada", steps=1)
    assert ctx.artifacts[0].meta["prompt"] == "ohwx_ada reading a book"


def test_cancel_between_steps_leaves_no_image(tiny_model: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tiny_model, cancel_after_generating=2)
    with pytest.raises(JobCancelled):
        DiffusersFluxGenerator().run(ctx, {"prompt": "x", "width": 64, "height": 64, "steps": 10})
    assert ctx.artifacts == []
    assert len([p for p in ctx.progress if p.stage == "generating"]) == 2


def test_missing_lora_file_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tiny_model)
    ref = LoraRef(lora_id="gone", path="loras/x/gone.safetensors", name="gone")
    with pytest.raises(PluginError, match="gone"):
        DiffusersFluxGenerator().run(ctx, {"prompt": "x", "width": 64, "height": 64, "loras": [ref.model_dump()]})
    escaping = LoraRef(lora_id="evil", path="../../etc/passwd", name="evil")
    with pytest.raises(PluginError, match="leaves the data folder"):
        DiffusersFluxGenerator().run(ctx, {"prompt": "x", "width": 64, "height": 64, "loras": [escaping.model_dump()]})


def test_comparison_grid_is_one_labelled_image(tiny_model: Path, lora_files: tuple[Path, list[Path]]) -> None:
    data_dir, files = lora_files
    ctx = RecordingContext(data_dir, tiny_model)
    grid = {
        "prompts": ["[trigger] in a portrait"],
        "seeds": [1, 2],
        "columns": [
            {"label": "base", "loras": []},
            {"label": "", "loras": [_ref(data_dir, files[0]).model_dump()]},
            {"label": "step 200", "loras": [_ref(data_dir, files[1]).model_dump()]},
        ],
    }
    request = {"width": 64, "height": 64, "steps": 2, "grid": grid, "trigger_word": "zxq"}
    summary = DiffusersFluxGenerator().run(ctx, request)
    assert summary["cells"] == 6
    (artifact,) = ctx.artifacts
    assert artifact.meta["kind"] == "grid"
    assert [c["label"] for c in artifact.meta["columns"]] == ["base", "lora-0 @1", "step 200"]
    # The labels and every PNG text say the prompt the model got, never the raw placeholder.
    assert artifact.meta["rows"] == ["zxq in a portrait\nseed 1", "zxq in a portrait\nseed 2"]
    with Image.open(data_dir / artifact.path) as image:
        texts = dict(image.text)  # type: ignore[attr-defined]
        assert texts and not any("[trigger]" in text for text in texts.values())
        grid_size = image.size
    # Each cell's parameters are its own: its size, its seed and its one column's LoRA, not the grid's.
    cells = artifact.meta["cells"]
    assert len(cells) == 6
    for cell in cells:
        assert (cell["width"], cell["height"]) == (64, 64)
        assert cell["seed"] == grid["seeds"][cell["row"]] and cell["prompt"] == "zxq in a portrait"
        column_loras = grid["columns"][cell["column"]]["loras"]
        assert [lora["path"] for lora in cell["loras"]] == [lora["path"] for lora in column_loras]
    assert (artifact.meta["width"], artifact.meta["height"]) == grid_size and "seed" not in artifact.meta
    blocks = texts["parameters"].split("\n\n")
    assert len(blocks) == 6 and all("Size: 64x64" in block for block in blocks)
    assert [f"Seed: {cell['seed']}," in block for cell, block in zip(cells, blocks, strict=True)] == [True] * 6
    assert sum("LoRAs:" in block for block in blocks) == 4  # the two LoRA columns, one LoRA each
    with Image.open(data_dir / artifact.path) as image:
        # Three 64 px columns beside the row labels, two 64 px rows under the headers.
        assert image.width > 3 * 64 and image.height > 2 * 64
        pixels = np.asarray(image.convert("RGB"))
    # Cells differ: the LoRA columns really rendered with their LoRAs.
    cell_w = 64
    from isengard.plugins.image.grid import HEADER_HEIGHT, PADDING, ROW_LABEL_WIDTH

    def cell(row: int, column: int) -> np.ndarray:
        x = ROW_LABEL_WIDTH + PADDING + column * (cell_w + PADDING)
        y = HEADER_HEIGHT + row * (64 + PADDING)
        return pixels[y : y + 64, x : x + cell_w]

    assert not np.array_equal(cell(0, 0), cell(0, 1))
    assert not np.array_equal(cell(0, 1), cell(0, 2))
    assert not np.array_equal(cell(0, 0), cell(1, 0))
    # The label area holds drawn text (dark pixels on white).
    assert (pixels[:HEADER_HEIGHT, ROW_LABEL_WIDTH:] < 100).any()
