"""Dataset grid over 100,000 images: first and deep pages of GET /api/images against a bare indexed SELECT.

Run: `.venv/bin/python bench/bench_dataset_grid.py [--rows 100000]`. Exits 3 when a bound is broken (see verdict.py).

What it shows, measured in the same run on the same database:
- a deep page (cursor ~95% of the way down) costs about what the first page does (keyset, not OFFSET);
- the whole request (routing, query, serialization of 60 items) stays within a fixed factor of the bare
  `SELECT ... WHERE (created_at, id) < (?, ?) ORDER BY ... LIMIT 61` it runs, so no hidden per-row queries;
- for contrast, what the same deep page costs with OFFSET.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert
from verdict import exit_status

from isengard.api.app import create_app
from isengard.api.support.pagination import encode_cursor
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Character, Image, new_id
from isengard.redis_server import EmbeddedRedis

# The app answers loopback host names only (no token configured), as a person's browser on this machine sends.
LOCAL_APP = "http://127.0.0.1"
PAGE = 60
REPEATS = 40
DEEP_OVER_FIRST_BOUND = 2.0  # a keyset page costs the same wherever it is
# HTTP + pydantic for 60 items over the bare query: about twice the 36x measured (27x to 44x over three runs) on an
# idle 2-core machine.
API_OVER_BARE_BOUND = 70.0


def _median_ms(action: Callable[[], object], repeats: int = REPEATS) -> float:
    for _ in range(3):
        action()  # warm caches and the connection pool
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _fill(url: str, rows: int, characters: int) -> None:
    engine = create_engine(url)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    character_ids = [new_id() for _ in range(characters)]
    with engine.begin() as connection:
        connection.execute(
            insert(Character),
            [
                {"id": cid, "name": f"c{i}", "name_key": f"c{i}", "trigger_word": f"c{i}", "description": ""}
                for i, cid in enumerate(character_ids)
            ],
        )
        batch: list[dict[str, object]] = []
        for i in range(rows):
            batch.append(
                {
                    "id": new_id(),
                    "character_id": character_ids[i % characters],
                    "filename": f"{i}.jpg",
                    "original_name": f"photo_{i}.jpg",
                    "width": 1024,
                    "height": 1024,
                    "bytes": 100_000,
                    "sha256": f"{i:064x}",
                    "caption": "[trigger] a photo" if i % 3 else "",
                    "flags": ",small," if i % 11 == 0 else "",
                    # Bursts share a timestamp, as one upload request's rows nearly do.
                    "created_at": start + timedelta(seconds=i // 20),
                }
            )
            if len(batch) == 10_000:
                connection.execute(insert(Image), batch)
                batch = []
        if batch:
            connection.execute(insert(Image), batch)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        redis = EmbeddedRedis(root / "redis", persist=False).start()
        try:
            data_dir = root / "data"
            data_dir.mkdir()
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                mode="fast-test",
                data_dir=data_dir,
                database_url=f"sqlite:///{data_dir / 'isengard.db'}",
                redis_url=redis.url,
                log_level="WARNING",
            )
            upgrade(settings.sqlalchemy_url)
            started = time.perf_counter()
            _fill(settings.sqlalchemy_url, args.rows, characters=20)
            print(f"inserted {args.rows:,} image rows in {time.perf_counter() - started:.1f} s")

            bare = sqlite3.connect(str(data_dir / "isengard.db"))
            depth = int(args.rows * 0.95)
            created_at, image_id = bare.execute(
                "SELECT created_at, id FROM images ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?", (depth,)
            ).fetchone()
            cursor = encode_cursor(datetime.fromisoformat(created_at).replace(tzinfo=UTC), image_id)

            def bare_first() -> object:
                return bare.execute(
                    "SELECT * FROM images ORDER BY created_at DESC, id DESC LIMIT ?", (PAGE + 1,)
                ).fetchall()

            def bare_deep() -> object:
                return bare.execute(
                    "SELECT * FROM images WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?",
                    (created_at, image_id, PAGE + 1),
                ).fetchall()

            def bare_offset() -> object:
                return bare.execute(
                    "SELECT * FROM images ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", (PAGE + 1, depth)
                ).fetchall()

            with TestClient(create_app(settings), base_url=LOCAL_APP) as client:
                first_page = client.get("/api/images", params={"limit": PAGE})
                deep_page = client.get("/api/images", params={"limit": PAGE, "cursor": cursor})
                assert first_page.status_code == 200 and len(first_page.json()["items"]) == PAGE
                assert deep_page.status_code == 200 and len(deep_page.json()["items"]) == PAGE
                api_first = _median_ms(lambda: client.get("/api/images", params={"limit": PAGE}))
                api_deep = _median_ms(lambda: client.get("/api/images", params={"limit": PAGE, "cursor": cursor}))
            reference_first = _median_ms(bare_first)
            reference_deep = _median_ms(bare_deep)
            reference_offset = _median_ms(bare_offset, repeats=10)
            bare.close()
        finally:
            redis.stop()

    deep_over_first = api_deep / api_first
    api_over_bare = api_deep / reference_deep
    print(f"bare indexed SELECT  first page {reference_first:8.3f} ms   deep page {reference_deep:8.3f} ms")
    print(f"GET /api/images      first page {api_first:8.3f} ms   deep page {api_deep:8.3f} ms")
    print(f"(contrast) OFFSET {depth:,}: {reference_offset:.3f} ms = {reference_offset / reference_deep:.0f}x keyset")
    print(f"ratio deep/first page (API):     {deep_over_first:6.2f}  (bound {DEEP_OVER_FIRST_BOUND})")
    print(f"ratio API/bare SELECT (deep):    {api_over_bare:6.1f}  (bound {API_OVER_BARE_BOUND})")
    broken = deep_over_first > DEEP_OVER_FIRST_BOUND or api_over_bare > API_OVER_BARE_BOUND
    print("FAIL: a bound is broken" if broken else "OK")
    return exit_status(broken=broken)


if __name__ == "__main__":
    sys.exit(main())
