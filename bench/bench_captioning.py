"""Captioning seconds per image through a caption job against a bare `generate()` loop on the same model.

Run: `.venv/bin/python bench/bench_captioning.py [--images 16] [--batch 4] [--tokens 24] [--repeats 5] [--max-ratio R]`.
Exits 3 when the bound is broken (see verdict.py).

On the tiny Qwen3-VL of fast-test mode, in the same run and with the same images, batch size and answer length:
- through the job: POST /api/characters/{id}/captions/auto, the Redis queue, a warm worker (model already loaded
  by an earlier job), the style pass, each caption stored in the database and its .txt file, per-image events,
  until the job row is final;
- bare: the same image preprocessing, prompt and `model.generate()` batches on the same loaded weights, nothing
  else. The ratio is the job's overhead; with the tiny model's millisecond forward passes it is an upper bound of
  what a real model's seconds per image would show.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# One thread everywhere, set before torch loads: OpenMP gives each new thread (the worker's) the default count, so
# torch.set_num_threads in the main thread alone would let the two sides run with different thread counts.
os.environ["OMP_NUM_THREADS"] = "1"

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the crafted photos live in tests/

import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from tests.image_samples import encode, photo  # noqa: E402
from verdict import exit_status  # noqa: E402

from isengard.api.app import create_app  # noqa: E402
from isengard.captions.style import CaptionStyle, instruction  # noqa: E402
from isengard.config import Settings  # noqa: E402
from isengard.db.migrate import upgrade  # noqa: E402
from isengard.domain import PluginKind  # noqa: E402
from isengard.plugins.caption.qwen_vl import QwenVLCaptioner, QwenVLConfig  # noqa: E402
from isengard.plugins.caption.qwen_vl_tiny import ensure_tiny_vlm  # noqa: E402
from isengard.redis_server import EmbeddedRedis  # noqa: E402
from isengard.worker.main import Worker  # noqa: E402

# The app answers loopback host names only (no token configured), as a person's browser on this machine sends.
LOCAL_APP = "http://127.0.0.1"
# About twice the 1.8 measured (1.80, 1.83, 2.14 over three runs, medians of 5) on an idle 2-core machine: the tiny
# model's batches take milliseconds, so the job's fixed costs (queue, events, database, .txt files) weigh heavily.
DEFAULT_MAX_RATIO = 3.5


def _wait_final(api: TestClient, job_id: str, timeout: float = 300.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        time.sleep(0.01)
    raise TimeoutError(f"caption job {job_id} did not finish")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=24, help="max_new_tokens of every answer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-ratio", type=float, default=DEFAULT_MAX_RATIO, help="bound on job time / bare time")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the fast-test worker does: tiny ops only wait for each other across threads
    config = {"batch_size": args.batch, "max_new_tokens": args.tokens, "max_image_pixels": 128 * 128}

    with tempfile.TemporaryDirectory(prefix="isengard-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        redis_server = EmbeddedRedis(Path(tmp) / "redis", persist=False).start()
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, mode="fast-test", data_dir=data_dir, redis_url=redis_server.url,
            database_url=f"sqlite:///{data_dir / 'isengard.db'}", log_level="WARNING",
        )  # fmt: skip
        upgrade(settings.sqlalchemy_url)
        ensure_tiny_vlm(data_dir / "models")
        worker = Worker(settings, worker_id="bench-worker")
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            with TestClient(create_app(settings), base_url=LOCAL_APP) as api:
                character = api.post("/api/characters", json={"name": "Bench", "trigger_word": "bnch"}).json()["id"]
                files = [
                    ("files", (f"{i}.jpg", encode(photo(i, (160, 200))), "image/jpeg")) for i in range(args.images)
                ]
                api.post(f"/api/characters/{character}/images", files=files).raise_for_status()
                body = {"scope": "all", "overwrite": True, "config": config}
                url = f"/api/characters/{character}/captions/auto"
                warm = _wait_final(api, api.post(url, json=body).json()["id"])  # loads the model in the worker
                assert warm["status"] == "succeeded", warm

                # The bare loop runs on the very weights the worker holds.
                plugin = worker.registry.get(PluginKind.CAPTION, "qwen-vl")
                assert isinstance(plugin, QwenVLCaptioner) and plugin._loaded is not None
                loaded = plugin._loaded
                uploads = sorted((data_dir / "uploads" / character).glob("*.jpg"))
                pictures = [Image.open(path).convert("RGB") for path in uploads]
                assert len(pictures) == args.images, f"found {len(pictures)} uploads"
                prompt = instruction(CaptionStyle())
                cfg = QwenVLConfig(**config)

                def bare() -> None:
                    for start in range(0, len(pictures), args.batch):
                        batch = pictures[start : start + args.batch]
                        pixels = loaded.image_processor(
                            images=batch, size={"shortest_edge": 32 * 32, "longest_edge": cfg.max_image_pixels},
                            return_tensors="pt",
                        )  # fmt: skip
                        merge = loaded.image_processor.merge_size
                        texts = [
                            plugin._prompt(int(g.prod()) // (merge * merge), prompt) for g in pixels["image_grid_thw"]
                        ]
                        tokens = loaded.tokenizer(texts, return_tensors="pt", padding=True)
                        with torch.inference_mode():
                            out = loaded.model.generate(**tokens, **pixels, max_new_tokens=cfg.max_new_tokens,
                                                        do_sample=False)  # fmt: skip
                        loaded.tokenizer.batch_decode(out[:, tokens["input_ids"].shape[1] :], skip_special_tokens=True)

                job_samples: list[float] = []
                bare_samples: list[float] = []

                def through_job() -> None:
                    job = _wait_final(api, api.post(url, json=body).json()["id"])
                    assert job["status"] == "succeeded" and job["result"]["captioned"] == args.images, job  # type: ignore[index]

                # Interleaved, alternating which goes first, so both see the same machine load.
                for repeat in range(args.repeats):
                    for name in ("bare", "job") if repeat % 2 == 0 else ("job", "bare"):
                        started = time.perf_counter()
                        if name == "bare":
                            # In a thread of its own, as the worker runs the job: the main thread is the one
                            # the API's test client and its event loop share.
                            runner = threading.Thread(target=bare)
                            runner.start()
                            runner.join()
                        else:
                            through_job()
                        seconds = (time.perf_counter() - started) / args.images
                        (bare_samples if name == "bare" else job_samples).append(seconds)
        finally:
            worker.request_stop()
            thread.join(timeout=30)
            redis_server.stop()

    ratio = statistics.median(job_samples) / statistics.median(bare_samples)
    print(f"model: tiny Qwen3-VL (fast-test), {args.images} images, batch {args.batch}, {args.tokens} new tokens")
    print(f"bare generate() loop        {statistics.median(bare_samples) * 1000:8.1f} ms per image")
    print(f"through the caption job     {statistics.median(job_samples) * 1000:8.1f} ms per image")
    print(f"samples (ms per image)      bare {[round(s * 1000) for s in bare_samples]}, "
          f"job {[round(s * 1000) for s in job_samples]}")  # fmt: skip
    print(f"overhead ratio              {ratio:8.2f}   (bound {args.max_ratio})")
    ok = ratio <= args.max_ratio
    print("OK" if ok else "BOUND BROKEN")
    return exit_status(broken=not ok)


if __name__ == "__main__":
    raise SystemExit(main())
