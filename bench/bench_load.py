"""Load benchmark: the real API under uvicorn on a loopback port, beside a bare FastAPI app as the ceiling.

Seeds 1,000 characters and 100,000 images (rows inserted directly), then drives concurrent clients through list
pages, uploads, training and generation submissions and 200 SSE subscribers. Each scenario prints p50/p99 latency
and throughput next to the matching bare endpoint (GET, JSON POST, multipart POST, SSE) measured in the same run,
with the ratio. No worker runs: submitted jobs stay queued, so submissions measure the API (validation, dataset
snapshot, job row, Redis enqueue), not the work. The API's rate limits are raised for the run so that the limiter is
not what is measured. Bounded in requests and time; loopback only.

Exits 1 when any request failed (a 4xx/5xx status or a transport error), 3 (see verdict.py) when a scenario's p50
latency over its bare ceiling's passes its bound in P50_OVER_BARE_BOUNDS (about twice what was measured).

    .venv/bin/python bench/bench_load.py [--requests 400] [--concurrency 16] [--subscribers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image as PILImage
from sqlalchemy import insert
from verdict import exit_status

from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Character, Image
from isengard.db.session import make_engine
from isengard.models.tiny import ensure_tiny_model
from isengard.redis_server import EmbeddedRedis, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
# One bare endpoint per kind of work, so each scenario is compared with the framework doing the same transport.
BARE_APP = """
import asyncio
from typing import Any
import uvicorn
from fastapi import FastAPI, UploadFile
from sse_starlette.sse import EventSourceResponse
app = FastAPI()
@app.get("/bare")
def bare() -> dict[str, bool]:
    return {"ok": True}
@app.post("/bare/json", status_code=202)
def bare_json(body: dict[str, Any]) -> dict[str, int]:
    return {"keys": len(body)}
@app.post("/bare/upload", status_code=201)
async def bare_upload(files: list[UploadFile]) -> dict[str, int]:
    return {"bytes": sum(len(await f.read()) for f in files)}
@app.get("/bare/sse")
async def bare_sse() -> EventSourceResponse:
    async def events():
        while True:
            await asyncio.sleep(15)
            yield {"comment": "keep-alive"}
    return EventSourceResponse(events())
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""
RAISED_RATE_LIMIT = "1000000"
# A small valid flux-lora config (the same shape the training API tests use); the run never starts.
TRAINING_CONFIG: dict[str, Any] = {
    "steps": 40, "rank": 4, "alpha": 8.0, "learning_rate": 3e-3, "resolutions": [64], "batch_size": 2,
    "sample_every": 20, "sample_prompts": ["[trigger] portrait"], "sample_resolution": 64, "sample_steps": 2,
    "checkpoint_every": 10, "keep_checkpoints": 2, "max_sequence_length": 32, "caption_dropout": 0.0,
}  # fmt: skip
DATASET_IMAGES = 4
# p50 latency of each scenario over its bare ceiling's, bounded at about twice the ratio measured with the defaults
# on an otherwise idle 2-core machine (the comment: the runs' ratios, median first); keyed by the start of the
# scenario's name. The load generator shares the cores with both servers, so runs vary by a third either way.
P50_OVER_BARE_BOUNDS: dict[str, float] = {
    "characters list": 70.0,  # 33.5x (36, 25): 1,000 characters, each with its image and LoRA counts and cover
    "images page of 100": 10.0,  # 5.0x (5.5, 3.0)
    "one character's images page": 12.0,  # 5.8x (5.9, 3.5)
    "upload one": 9.0,  # 4.4x (4.9, 3.7): body received first, decoding, hashing, thumbnail, fsynced commit
    "submit training": 12.0,  # 5.6x (6.1, 3.1): dataset checks and snapshot, job row, enqueue
    "submit generation": 7.0,  # 3.2x (3.6, 2.3)
    "jobs page of 50": 12.0,  # 5.9x (6.4, 4.2)
    "SSE subscribers": 6.0,  # 2.3x (3.2, 2.2; a fourth run 4.0x)
}

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Result:
    p50_ms: float
    p99_ms: float
    rate: float  # completed requests (or subscriptions) a second
    count: int
    errors: int
    first_error: str = ""
    cold_ms: float = float("nan")  # the first, unmeasured warm-up call: imports and caches on first use


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def summarize(latencies: list[float], elapsed: float, errors: int, first_error: str) -> Result:
    latencies.sort()
    return Result(
        p50_ms=statistics.median(latencies) * 1000 if latencies else float("nan"),
        p99_ms=percentile(latencies, 0.99) * 1000,
        rate=len(latencies) / elapsed if elapsed > 0 else 0.0,
        count=len(latencies),
        errors=errors,
        first_error=first_error,
    )


def seed(settings: Settings, characters: int, images: int) -> str:
    engine = make_engine(settings.sqlalchemy_url)
    ids = [uuid.uuid4().hex for _ in range(characters)]
    with engine.begin() as conn:
        conn.execute(
            insert(Character),
            [
                {"id": cid, "name": f"Character {i}", "name_key": f"character {i}", "trigger_word": f"chr{i}"}
                for i, cid in enumerate(ids)
            ],
        )
        batch = []
        for index in range(images):
            batch.append(
                {
                    "id": uuid.uuid4().hex,
                    "character_id": ids[index % characters],
                    "filename": f"{index}.png",
                    "sha256": f"{index:064x}",
                    "width": 1024,
                    "height": 1024,
                    "bytes": 500_000,
                    "format": "png",
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(Image), batch)
                batch = []
        if batch:
            conn.execute(insert(Image), batch)
    engine.dispose()
    return ids[0]


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


def png_bytes(seed_value: int, side: int = 256) -> bytes:
    """A distinct PNG per seed (uploads are deduplicated by content): the seed is written into the first pixel."""
    image = PILImage.new("RGB", (side, side), ((seed_value * 37) % 256, (seed_value * 91) % 256, 128))
    image.putpixel((0, 0), ((seed_value >> 16) & 255, (seed_value >> 8) & 255, seed_value & 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


WARMUP_CALLS = 3


async def measure(requests: int, concurrency: int, call: Call) -> Result:
    """`requests` calls spread over `concurrency` clients, after a few sequential warm-up calls that are not
    counted (the first of them is reported as the cold latency). A status >= 400 or a transport error is a
    failure, in the warm-up too."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    remaining = iter(range(requests))

    async def timed(client: httpx.AsyncClient) -> float | None:
        nonlocal errors, first_error
        started = time.perf_counter()
        try:
            response = await call(client)
        except httpx.HTTPError as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            return None
        if response.status_code >= 400:
            errors += 1
            first_error = first_error or f"{response.status_code} {response.text[:200]}"
        return time.perf_counter() - started

    async def client_loop(client: httpx.AsyncClient) -> None:
        for _ in remaining:
            latency = await timed(client)
            if latency is not None:
                latencies.append(latency)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        warmup = [await timed(client) for _ in range(WARMUP_CALLS)]
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    result = summarize(latencies, elapsed, errors, first_error)
    result.cold_ms = (warmup[0] or float("nan")) * 1000
    return result


async def subscribe_many(url: str, count: int, probe: str) -> tuple[Result, float, int]:
    """Open `count` SSE connections at once and time each until its response headers (subscribed). While all
    are open, time one GET of `probe`: the API must keep answering with every subscriber connected."""
    connected: list[float] = []
    errors = 0
    first_error = ""
    ready = asyncio.Event()
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60)) as client:
        started = time.perf_counter()

        async def subscribe() -> None:
            nonlocal errors, first_error
            opened = time.perf_counter()
            try:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        errors += 1
                        first_error = first_error or f"status {response.status_code}"
                        return
                    connected.append(time.perf_counter() - opened)
                    await ready.wait()
            except httpx.HTTPError as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"

        tasks = [asyncio.create_task(subscribe()) for _ in range(count)]
        while len(connected) + errors < count and time.perf_counter() - started < 60:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        probe_started = time.perf_counter()
        probe_response = await client.get(probe)
        probe_ms = (time.perf_counter() - probe_started) * 1000
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    missing = count - len(connected) - errors  # still not subscribed after the deadline
    return summarize(connected, elapsed, errors + missing, first_error), probe_ms, probe_response.status_code


def p50_bound(name: str) -> float:
    for prefix, bound in P50_OVER_BARE_BOUNDS.items():
        if prefix in name:
            return bound
    raise KeyError(f"no bound for the scenario {name!r}")


def print_row(name: str, result: Result, ceiling: Result, ceiling_name: str, unit: str = "req/s") -> None:
    line = (
        f"{name:<40} p50 {result.p50_ms:8.1f} ms  p99 {result.p99_ms:8.1f} ms  {result.rate:7.1f} {unit}  "
        f"failed {result.errors}"
        + ("" if math.isnan(result.cold_ms) else f"  (cold first call {result.cold_ms:.0f} ms)")
    )
    print(line)
    print(
        f"{'  ceiling: bare ' + ceiling_name:<40} p50 {ceiling.p50_ms:8.1f} ms  p99 {ceiling.p99_ms:8.1f} ms  "
        f"{ceiling.rate:7.1f} {unit}  -> API/bare: p50 x{result.p50_ms / ceiling.p50_ms:.1f}, "
        f"p99 x{result.p99_ms / ceiling.p99_ms:.1f}, throughput {result.rate / ceiling.rate:.2f}"
    )
    if result.first_error:
        print(f"{'':<40} first failure: {result.first_error}")


async def captioned_character(client: httpx.AsyncClient, base: str) -> str:
    """A character with a few real, captioned uploads, so a training submission passes its dataset checks."""
    created = await client.post(f"{base}/api/characters", json={"name": "Bench Subject", "trigger_word": "bnchx"})
    created.raise_for_status()
    character_id: str = created.json()["id"]
    files = [
        ("files", (f"subject{i}.png", png_bytes(900_000 + i, side=96), "image/png")) for i in range(DATASET_IMAGES)
    ]
    upload = await client.post(f"{base}/api/characters/{character_id}/images", files=files)
    upload.raise_for_status()
    for index, item in enumerate(upload.json()["results"]):
        patched = await client.patch(
            f"{base}/api/images/{item['image']['id']}", json={"caption": f"a photo of [trigger], number {index}"}
        )
        patched.raise_for_status()
    return character_id


@dataclass
class Outcome:
    failed_requests: int = 0
    broken_bounds: int = 0


async def drive(base: str, bare: str, seeded_id: str, requests: int, concurrency: int, subscribers: int) -> Outcome:
    """Runs every scenario; counts failed requests and broken bounds."""
    outcome = Outcome()

    def report(name: str, result: Result, ceiling: Result, ceiling_name: str, unit: str = "req/s") -> None:
        outcome.failed_requests += result.errors
        print_row(name, result, ceiling, ceiling_name, unit)
        ratio, bound = result.p50_ms / ceiling.p50_ms, p50_bound(name)
        if ratio > bound:
            outcome.broken_bounds += 1
            print(f"{'':<40} BOUND BROKEN: p50 x{ratio:.1f} over the bare {ceiling_name} (bound x{bound:.0f})")

    get_ceiling = await measure(requests, concurrency, lambda c: c.get(f"{bare}/bare"))

    def get(path: str) -> Call:
        return lambda c: c.get(f"{base}{path}")

    for name, path in [
        ("characters list (all 1,000)", "/api/characters"),
        ("images page of 100 (of 100,000)", "/api/images?limit=100"),
        ("one character's images page", f"/api/images?limit=100&character_id={seeded_id}"),
    ]:
        report(name, await measure(requests, concurrency, get(path)), get_ceiling, "GET")

    submissions = max(20, requests // 4)
    upload_concurrency = min(concurrency, 4)
    counter = iter(range(10**9))

    def upload(c: httpx.AsyncClient, url: str) -> Awaitable[httpx.Response]:
        number = next(counter)
        return c.post(url, files=[("files", (f"{number}.png", png_bytes(number), "image/png"))])

    upload_ceiling = await measure(submissions, upload_concurrency, lambda c: upload(c, f"{bare}/bare/upload"))
    uploads = await measure(
        submissions, upload_concurrency, lambda c: upload(c, f"{base}/api/characters/{seeded_id}/images")
    )
    report("upload one 256px PNG", uploads, upload_ceiling, "multipart POST")

    async with httpx.AsyncClient(timeout=60) as setup_client:
        subject = await captioned_character(setup_client, base)
    training_body = {"character_id": subject, "plugin": "flux-lora", "config": TRAINING_CONFIG}
    generation_body = {
        "prompt": "[trigger] portrait, soft light",
        "character_id": subject,
        "width": 64,
        "height": 64,
        "steps": 2,
        "seed": 7,
    }
    json_ceiling = await measure(submissions, concurrency, lambda c: c.post(f"{bare}/bare/json", json=training_body))
    training = await measure(submissions, concurrency, lambda c: c.post(f"{base}/api/training", json=training_body))
    report(f"submit training ({DATASET_IMAGES} images)", training, json_ceiling, "JSON POST")
    generation = await measure(
        submissions, concurrency, lambda c: c.post(f"{base}/api/generation", json=generation_body)
    )
    report("submit generation", generation, json_ceiling, "JSON POST")
    report(
        f"jobs page of 50 (of {training.count + generation.count + 2 * WARMUP_CALLS} queued)",
        await measure(requests, concurrency, get("/api/jobs?limit=50")),
        get_ceiling,
        "GET",
    )

    sse_ceiling, _, _ = await subscribe_many(f"{bare}/bare/sse", subscribers, f"{bare}/bare")
    sse, probe_ms, probe_status = await subscribe_many(f"{base}/api/events", subscribers, f"{base}/api/jobs?limit=50")
    report(f"{subscribers} SSE subscribers (time to subscribe)", sse, sse_ceiling, "SSE", unit="sub/s")
    print(f"{'':<40} a jobs page while all {subscribers} listen: {probe_ms:.1f} ms (status {probe_status})")
    if probe_status >= 400:
        outcome.failed_requests += 1
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per read scenario (a quarter for writes)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (at most 4 for uploads)")
    parser.add_argument("--subscribers", type=int, default=200, help="SSE connections held open at once")
    parser.add_argument("--images", type=int, default=100_000, help="image rows seeded across 1,000 characters")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="isengard-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        redis_server = EmbeddedRedis(Path(tmp) / "redis", persist=False).start()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            settings = Settings(_env_file=None, mode="fast-test", data_dir=data, redis_url=redis_server.url)  # type: ignore[call-arg]
            upgrade(settings.sqlalchemy_url)
            started = time.perf_counter()
            seeded_id = seed(settings, 1000, args.images)
            print(f"seeded 1,000 characters and {args.images:,} images in {time.perf_counter() - started:.1f} s")
            # Submissions check that the plugin can run, which in fast-test mode means the tiny model is on disk.
            started = time.perf_counter()
            ensure_tiny_model(settings)
            print(f"tiny model ready in {time.perf_counter() - started:.1f} s")
            api_port, bare_port = free_port(), free_port()
            limits = {
                f"ISENGARD_RATE_LIMIT_{bucket}": RAISED_RATE_LIMIT for bucket in ("UPLOADS", "TRAINING", "GENERATION")
            }
            env = (
                {k: v for k, v in os.environ.items() if not k.startswith("ISENGARD_")}
                | limits
                | {
                    "ISENGARD_MODE": "fast-test",
                    "ISENGARD_DATA_DIR": str(data),
                    "REDIS_URL": redis_server.url,
                    "ISENGARD_PORT": str(api_port),
                    "ISENGARD_LOG_LEVEL": "WARNING",
                    "ISENGARD_MIN_FREE_BYTES": "0",
                }
            )
            print(
                f"rate limits raised to {RAISED_RATE_LIMIT}/minute for uploads, training and generation "
                "(this measures the API, not the limiter); no worker runs, submitted jobs stay queued"
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "isengard.cli", "api"], env=env, cwd=REPO_ROOT, stderr=subprocess.DEVNULL
                )
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", BARE_APP.replace("{port}", str(bare_port))], stderr=subprocess.DEVNULL
                )
            )
            base, bare = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{bare_port}"
            wait_up(f"{base}/api/auth/session")
            wait_up(f"{bare}/bare")
            print(f"{args.concurrency} concurrent clients, {args.requests} requests per read scenario\n")
            outcome = asyncio.run(drive(base, bare, seeded_id, args.requests, args.concurrency, args.subscribers))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)
            redis_server.stop()
    if outcome.failed_requests:
        print(f"\n{outcome.failed_requests} failed request(s)", file=sys.stderr)
        return 1
    if outcome.broken_bounds:
        print(f"\n{outcome.broken_bounds} broken bound(s)", file=sys.stderr)
    return exit_status(broken=outcome.broken_bounds > 0)


if __name__ == "__main__":
    raise SystemExit(main())
