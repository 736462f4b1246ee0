"""Load benchmark: the real API under uvicorn on a loopback port, beside a bare FastAPI endpoint as the ceiling.

Seeds 1,000 characters and 100,000 images (rows inserted directly), then drives concurrent clients through list
pages, uploads and 200 SSE subscribers, and prints p50/p99 latency and throughput for each next to the bare
endpoint measured in the same run. Bounded in requests and time; loopback only.

    .venv/bin/python bench/bench_load.py [--requests 400] [--concurrency 16] [--subscribers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from PIL import Image as PILImage
from sqlalchemy import insert

from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Character, Image
from isengard.db.session import make_engine
from isengard.redis_server import EmbeddedRedis, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
BARE_APP = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/bare")
def bare() -> dict[str, bool]:
    return {"ok": True}
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


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


async def measure(
    name: str, requests: int, concurrency: int, call: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            response = await call(client)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rps": len(latencies) / elapsed,
        "errors": errors,
    }


async def sse_subscribers(base: str, count: int) -> dict[str, float]:
    """Open `count` SSE connections at once; time until each has its response headers (subscribed)."""
    connected: list[float] = []
    ready = asyncio.Event()
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60)) as client:
        started = time.perf_counter()

        async def subscribe() -> None:
            async with client.stream("GET", f"{base}/api/events") as response:
                assert response.status_code == 200
                connected.append(time.perf_counter() - started)
                await ready.wait()

        tasks = [asyncio.create_task(subscribe()) for _ in range(count)]
        while len(connected) < count and time.perf_counter() - started < 60:
            await asyncio.sleep(0.02)
        # While all are subscribed, the API must still answer quickly.
        probe_started = time.perf_counter()
        probe = await client.get(f"{base}/api/characters?limit=50")
        probe_ms = (time.perf_counter() - probe_started) * 1000
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    connected.sort()
    return {
        "subscribed": len(connected),
        "p50_ms": statistics.median(connected) * 1000,
        "p99_ms": connected[int(len(connected) * 0.99) - 1] * 1000,
        "list_while_subscribed_ms": probe_ms,
        "list_status": probe.status_code,
    }


def png_bytes(seed_value: int) -> bytes:
    image = PILImage.new("RGB", (256, 256), ((seed_value * 37) % 256, (seed_value * 91) % 256, seed_value % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def row(name: str, result: dict[str, float], ceiling: dict[str, float]) -> str:
    return (
        f"{name:<28} p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms  {result['rps']:8.1f} req/s  "
        f"errors {int(result['errors'])}  | vs bare: p50 x{result['p50_ms'] / ceiling['p50_ms']:.1f}, "
        f"throughput {result['rps'] / ceiling['rps']:.2f}"
    )


async def drive(base: str, bare: str, character_id: str, requests: int, concurrency: int, subscribers: int) -> None:
    ceiling = await measure("bare", requests, concurrency, lambda c: c.get(f"{bare}/bare"))
    print(
        f"{'bare FastAPI endpoint':<28} p50 {ceiling['p50_ms']:8.2f} ms  p99 {ceiling['p99_ms']:8.2f} ms  "
        f"{ceiling['rps']:8.1f} req/s  (ceiling)"
    )
    scenarios: list[tuple[str, int, Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]]] = [
        ("characters page (of 1,000)", requests, lambda c: c.get(f"{base}/api/characters?limit=50")),
        ("images page (of 100,000)", requests, lambda c: c.get(f"{base}/api/images?limit=100")),
        (
            "character's images page",
            requests,
            lambda c: c.get(f"{base}/api/images?limit=100&character_id={character_id}"),
        ),
        ("job list page", requests, lambda c: c.get(f"{base}/api/jobs?limit=50")),
    ]
    for name, count, call in scenarios:
        print(row(name, await measure(name, count, concurrency, call), ceiling))
    counter = iter(range(10**9))
    uploads = await measure(
        "uploads",
        max(20, requests // 10),
        min(concurrency, 4),
        lambda c: c.post(
            f"{base}/api/characters/{character_id}/images",
            files=[("files", (f"{next(counter)}.png", png_bytes(next(counter)), "image/png"))],
        ),
    )
    print(row("upload one 256px PNG", uploads, ceiling))
    sse = await sse_subscribers(base, subscribers)
    print(
        f"{subscribers} SSE subscribers: {int(sse['subscribed'])} connected, p50 {sse['p50_ms']:.1f} ms, "
        f"p99 {sse['p99_ms']:.1f} ms to subscribe; a list page while all listen: "
        f"{sse['list_while_subscribed_ms']:.1f} ms (status {int(sse['list_status'])})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--images", type=int, default=100_000)
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
            character_id = seed(settings, 1000, args.images)
            print(f"seeded 1,000 characters and {args.images:,} images in {time.perf_counter() - started:.1f} s")
            api_port, bare_port = free_port(), free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("ISENGARD_")} | {
                "ISENGARD_MODE": "fast-test",
                "ISENGARD_DATA_DIR": str(data),
                "REDIS_URL": redis_server.url,
                "ISENGARD_PORT": str(api_port),
                "ISENGARD_LOG_LEVEL": "WARNING",
                "ISENGARD_RATE_LIMIT_UPLOADS": "1000000",
                "ISENGARD_MIN_FREE_BYTES": "0",
            }
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
            asyncio.run(drive(base, bare, character_id, args.requests, args.concurrency, args.subscribers))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)
            redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
