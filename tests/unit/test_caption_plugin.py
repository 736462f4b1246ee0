"""The built-in captioner on the tiny Qwen3-VL: real preprocessing and `generate()`, batches, style, cancellation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isengard.plugins.api import Host, JobCancelled
from isengard.plugins.caption.qwen_vl import QwenVLCaptioner, QwenVLSettings
from isengard.plugins.caption.qwen_vl_tiny import TINY_DIRNAME, ensure_tiny_vlm
from tests.image_samples import photo
from tests.support.recording_context import RecordingContext

FAST = {"batch_size": 2, "max_new_tokens": 12, "max_image_pixels": 96 * 96}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other on a busy machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    ensure_tiny_vlm(folder)
    return folder


def _dataset(data_dir: Path, count: int, models_dir: Path) -> list[dict[str, str]]:
    (data_dir / "models").mkdir(parents=True, exist_ok=True)
    if not (data_dir / "models" / TINY_DIRNAME).exists():
        (data_dir / "models" / TINY_DIRNAME).symlink_to(models_dir / TINY_DIRNAME, target_is_directory=True)
    images = []
    for index in range(count):
        path = data_dir / "uploads" / "c1" / f"img{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo(index, (80 + 16 * index, 64)).save(path)
        images.append({"image_id": f"img{index}", "image_path": path.relative_to(data_dir).as_posix()})
    return images


def _plugin() -> QwenVLCaptioner:
    return QwenVLCaptioner(Host(mode="fast-test"))


def test_every_image_gets_a_styled_caption_from_the_real_generate_path(tmp_path: Path, models_dir: Path) -> None:
    images = _dataset(tmp_path, 3, models_dir)
    ctx = RecordingContext(tmp_path, tmp_path / "unused")
    plugin = _plugin()
    assert plugin.capabilities().available
    style = {"prefix": "photo of", "leave_identity_out": True}
    result = plugin.run(ctx, {"character_id": "c1", "images": images, "style": style, "config": FAST})
    assert result == {"captioned": 3, "kept": 0, "images": 3}
    assert set(ctx.captions) == {"img0", "img1", "img2"}
    for caption in ctx.captions.values():
        assert caption.startswith("photo of [trigger], ")
        assert len(caption) > len("photo of [trigger], ")  # the model wrote something
        assert caption.isascii()  # the tiny model's generation config keeps its gibberish printable
    # Two batches of at most two images, each reported once done.
    assert [(p.step, p.total) for p in ctx.progress] == [(0, 3), (2, 3), (3, 3)]


def test_existing_captions_are_kept_unless_overwrite(tmp_path: Path, models_dir: Path) -> None:
    images = _dataset(tmp_path, 2, models_dir)
    ctx = RecordingContext(tmp_path, tmp_path / "unused")
    ctx.captions["img0"] = "[trigger], written by hand"
    result = _plugin().run(ctx, {"character_id": "c1", "images": images, "config": FAST})
    assert result["captioned"] == 1 and result["kept"] == 1
    assert ctx.captions["img0"] == "[trigger], written by hand"
    _plugin().run(ctx, {"character_id": "c1", "images": images, "config": FAST, "overwrite": True})
    assert ctx.captions["img0"] != "[trigger], written by hand"


def test_cancel_stops_between_batches(tmp_path: Path, models_dir: Path) -> None:
    images = _dataset(tmp_path, 4, models_dir)
    ctx = RecordingContext(tmp_path, tmp_path / "unused", cancel_at_step=2)
    with pytest.raises(JobCancelled):
        _plugin().run(ctx, {"character_id": "c1", "images": images, "config": FAST})
    assert set(ctx.captions) == {"img0", "img1"}


def test_production_without_weights_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ISENGARD_QWEN_VL_MODEL_PATH", str(tmp_path / "nowhere"))  # read as the plugin's own setting
    capability = QwenVLCaptioner(Host(mode="production")).capabilities()
    assert not capability.available
    assert "Qwen/Qwen3-VL-2B-Instruct" in str(capability.reason) and "ISENGARD_QWEN_VL_MODEL_PATH" in str(
        capability.reason
    )
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    found = QwenVLCaptioner(Host(mode="production"), QwenVLSettings(model_path=weights)).capabilities()
    assert found.available and found.details["path"] == str(weights)


def test_an_image_deleted_after_submission_is_skipped_not_fatal(tmp_path: Path, models_dir: Path) -> None:
    images = _dataset(tmp_path, 3, models_dir)
    (tmp_path / images[1]["image_path"]).unlink()
    ctx = RecordingContext(tmp_path, tmp_path / "unused")
    result = _plugin().run(ctx, {"character_id": "c1", "images": images, "config": FAST})
    assert result == {"captioned": 2, "kept": 0, "missing": 1, "images": 3}
    assert set(ctx.captions) == {"img0", "img2"}
    assert any("img1" in line.message for line in ctx.logs)
