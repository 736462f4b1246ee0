"""What scoring samples costs: a training run's time with every sample scored (the worker's scoring thread, clip and
face evaluators) against the same run without, and the face evaluator's seconds per photo.

Run: `.venv/bin/python bench/bench_evaluation.py [--steps 120] [--sample-every 20] [--repeats 3] [--photos 6]`.
Exits 3 when the training-time ratio is above --max-ratio or a photo takes longer than --max-face-seconds
(see verdict.py).

Both runs go through `FluxLoraTrainer.run` on the tiny FLUX model in this process, with a context that hands each
sample to a `SampleScoring` thread (scores stored in a real SQLite database) or to nothing. Runs alternate, and the
median of the repeats is compared, so a busy machine slows both sides alike. The scoring thread's wait for its last
samples after the run is reported apart: it is not training time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_trainer import TimingContext, make_dataset
from verdict import exit_status

from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Job, SampleScoreRecord
from isengard.db.session import make_engine, make_sessionmaker, session_scope
from isengard.domain import TrainingInput
from isengard.evaluation.scorer import RunScorer
from isengard.models.tiny import save_tiny_model
from isengard.plugins.api import Artifact
from isengard.plugins.evaluate.face import FaceEvaluator
from isengard.plugins.registry import load_registry
from isengard.plugins.training.flux_lora import FluxLoraTrainer
from isengard.worker.scoring import PendingSample, SampleScoring


class ScoringContext(TimingContext):
    """The timing context, handing each sample to a scoring thread as the worker's context does."""

    def __init__(self, data_dir: Path, base_model: Path, scoring: SampleScoring | None) -> None:
        super().__init__(data_dir, base_model)
        self.scoring = scoring
        self.samples = 0

    def emit_sample(self, path: Path, *, step: int, index: int = 0, prompt: str = "", **_: Any) -> Artifact:
        artifact = super().emit_sample(path)
        self.samples += 1
        if self.scoring is not None:
            self.scoring.submit(PendingSample(f"s{self.samples}", path, step, index, prompt))
        return artifact


def one_run(root: Path, model: Path, config: dict[str, Any], job: TrainingInput, *, scored: bool,
            settings: Settings, run: int) -> tuple[float, float, int]:  # fmt: skip
    """(training seconds, seconds waiting for the last scores, samples scored)."""
    sessions = make_sessionmaker(make_engine(settings.sqlalchemy_url))
    job_id = f"{run:032d}"
    scoring = None
    if scored:
        with session_scope(sessions) as session:
            session.add(Job(id=job_id, kind="training", plugin="flux-lora"))
        registry = load_registry(settings)
        references = [root / "data" / item.image_path for item in job.dataset]
        scoring = SampleScoring(
            job_id, sessions, lambda: RunScorer(registry, sessions, references, job.trigger_word), lambda *a, **k: None
        )
    ctx = ScoringContext(root / "data", model, scoring)
    started = time.perf_counter()
    FluxLoraTrainer(None).run(ctx, {"plugin": "flux-lora", "config": config, "input": job.model_dump()})
    trained = time.perf_counter() - started
    drained = 0.0
    count = 0
    if scoring is not None:
        started = time.perf_counter()
        scoring.close(drain=True)
        drained = time.perf_counter() - started
        with session_scope(sessions) as session:
            count = session.query(SampleScoreRecord).filter_by(job_id=job_id).count()
        assert scoring.failed is None, scoring.failed
    return trained, drained, count


def face_seconds_per_photo(photos: int) -> float:
    import skimage.data
    from PIL import Image

    evaluator = FaceEvaluator()
    portrait = Image.fromarray(skimage.data.astronaut())  # 512 x 512, a real photograph
    evaluator.embed_images([portrait])  # models loaded outside the timing
    times = []
    for _ in range(photos):
        started = time.perf_counter()
        evaluator.embed_images([portrait])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--sample-every", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a busy machine)")
    parser.add_argument("--max-ratio", type=float, default=1.05)  # the promise; measured: 0.89-1.0 (noise)
    parser.add_argument("--max-face-seconds", type=float, default=1.3)  # about twice the 0.66 s measured
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = {
        "steps": args.steps, "rank": 4, "alpha": 4.0, "learning_rate": 1e-3, "resolutions": [args.resolution],
        "batch_size": 2, "gradient_checkpointing": False, "mixed_precision": "fp32",
        "sample_every": args.sample_every, "sample_prompts": ["[trigger] portrait", "[trigger] in a red coat"],
        "sample_resolution": 64, "sample_steps": 2, "checkpoint_every": 0, "max_sequence_length": 32,
        "caption_dropout": 0.0,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = save_tiny_model(root / "tiny-flux")
        job = make_dataset(root / "data", 4, args.resolution)
        settings = Settings(mode="fast-test", data_dir=root / "data")
        upgrade(settings.sqlalchemy_url)
        plain: list[float] = []
        scored: list[float] = []
        drains: list[float] = []
        count = 0
        # One scored run first, uncounted: it builds the tiny CLIP and embeds the references into the cache once.
        one_run(root, model, config, job, scored=True, settings=settings, run=0)
        for repeat in range(args.repeats):
            plain.append(one_run(root, model, config, job, scored=False, settings=settings, run=2 * repeat + 1)[0])
            seconds, drain, count = one_run(
                root, model, config, job, scored=True, settings=settings, run=2 * repeat + 2
            )
            scored.append(seconds)
            drains.append(drain)
    ratio = statistics.median(scored) / statistics.median(plain)
    face = face_seconds_per_photo(args.photos)
    print(f"tiny FLUX, {args.steps} steps at {args.resolution}px, a sample pair every {args.sample_every} steps, "
          f"{args.repeats} repeat(s), {args.threads} thread(s); {count} samples scored per run")  # fmt: skip
    without, with_scoring = statistics.median(plain), statistics.median(scored)
    print(f"training without scoring: {without:.2f} s   with scoring: {with_scoring:.2f} s   ratio: {ratio:.3f}"
          f"   (then {statistics.median(drains):.2f} s for the last scores)")  # fmt: skip
    print(f"face evaluator: {face:.3f} s per 512 px photo (median of {args.photos})")
    broken = False
    if ratio > args.max_ratio:
        print(f"FAIL: scoring slows training by {ratio:.3f}x, above {args.max_ratio}")
        broken = True
    if face > args.max_face_seconds:
        print(f"FAIL: the face evaluator takes {face:.2f} s per photo, above {args.max_face_seconds}")
        broken = True
    return exit_status(broken=broken)


if __name__ == "__main__":
    sys.exit(main())
