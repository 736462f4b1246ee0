"""The clip evaluator's real code path on the tiny CLIP of fast-test (built locally from a config, loaded back from
its folder like a downloaded one): images and texts embed to comparable vectors; production without weights says
what to download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isengard.config import Settings
from isengard.plugins.evaluate.clip import ClipEvalSettings, ClipEvaluator
from isengard.plugins.evaluate.interface import Subject
from tests.portraits import astronaut, augmentations, grace_hopper


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> ClipEvaluator:
    data = tmp_path_factory.mktemp("clip-data")
    return ClipEvaluator(Settings(mode="fast-test", data_dir=data), ClipEvalSettings())


def test_the_tiny_clip_embeds_images_and_texts_comparably(evaluator: ClipEvaluator) -> None:
    assert evaluator.capabilities().available
    embedded = evaluator.embed_images([astronaut(), augmentations(astronaut())["flip"], grace_hopper()])
    assert [e.subject for e in embedded] == [Subject.OK] * 3
    vectors = [e.vector for e in embedded]
    assert all(v is not None for v in vectors)
    same = evaluator.similarity(vectors[0], vectors[0])  # type: ignore[arg-type]
    assert same == pytest.approx(1.0, abs=1e-5)
    texts = evaluator.embed_texts(["a woman in a space suit", "an old portrait photograph"])
    assert len(texts) == 2 and texts[0].shape == vectors[0].shape  # type: ignore[union-attr]
    score = evaluator.text_similarity(vectors[0], texts[0])  # type: ignore[arg-type]
    assert -1.0 <= score <= 1.0
    # Deterministic: the same image embeds to the same vector again (the model is cached, not rebuilt).
    again = evaluator.embed_images([astronaut()])[0].vector
    assert again is not None and np.allclose(again, vectors[0])  # type: ignore[arg-type]


def test_the_tiny_model_is_built_once_under_the_data_folder(evaluator: ClipEvaluator) -> None:
    evaluator.embed_texts(["x"])
    folder = evaluator.host.models_dir
    assert folder is not None and (folder / "tiny-clip" / "config.json").is_file()


def test_production_without_weights_says_what_to_download(tmp_path: Path) -> None:
    plugin = ClipEvaluator(
        Settings(mode="production", data_dir=tmp_path), ClipEvalSettings(model_path=tmp_path / "nowhere")
    )
    capability = plugin.capabilities()
    assert not capability.available
    assert capability.reason is not None and "hf download" in capability.reason
