"""The dataset grid: every image across characters, newest first, cursor pages, filters, on the index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.orm import Session

from isengard.api.services.dataset.images import grid_query
from isengard.api.support.pagination import encode_cursor
from isengard.config import Settings
from isengard.db.models import Character, Image, new_id
from tests.image_samples import encode, photo


def _bulk_rows(engine: Engine, character_id: str, count: int, stamp: datetime, *, same_time: bool) -> None:
    rows = [
        {
            "id": new_id(),
            "character_id": character_id,
            "filename": f"{i}.jpg",
            "width": 512,
            "height": 512,
            "bytes": 1,
            "sha256": f"{i:064x}",
            "flags": ",small," if i % 7 == 0 else "",
            "created_at": stamp if same_time else stamp + timedelta(seconds=i),
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Image), rows)


def _walk(client: TestClient, limit: int, **params: str) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": str(limit), **params}
        if cursor:
            query["cursor"] = cursor
        page = client.get("/api/images", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_pages_cover_every_image_once_newest_first(client: TestClient, settings: Settings) -> None:
    first = client.post("/api/characters", json={"name": "Elrond"}).json()["id"]
    second = client.post("/api/characters", json={"name": "Galadriel"}).json()["id"]
    for character_id, seeds in ((first, range(3)), (second, range(3, 5))):
        files = [("files", (f"{s}.jpg", encode(photo(s, (200, 240))), "image/jpeg")) for s in seeds]
        assert client.post(f"/api/characters/{character_id}/images", files=files).status_code == 201
    engine = create_engine(settings.sqlalchemy_url)
    # 130 rows sharing one timestamp: only the id breaks the tie, and no page may repeat or skip one.
    _bulk_rows(engine, second, 130, datetime(2020, 1, 1, tzinfo=UTC), same_time=True)
    with Session(engine) as db:
        expected = list(db.scalars(select(Image.id).order_by(Image.created_at.desc(), Image.id.desc())))
        by_character = {
            cid: list(
                db.scalars(
                    select(Image.id).where(Image.character_id == cid).order_by(Image.created_at.desc(), Image.id.desc())
                )
            )
            for cid in (first, second)
        }
        small = list(
            db.scalars(
                select(Image.id).where(Image.flags.like("%,small,%")).order_by(Image.created_at.desc(), Image.id.desc())
            )
        )

    assert len(expected) == 135
    assert _walk(client, 7) == expected
    assert _walk(client, 200) == expected
    assert _walk(client, 4, character_id=first) == by_character[first]
    assert _walk(client, 9, character_id=second) == by_character[second]
    assert _walk(client, 5, flag="small") == small and small

    page = client.get("/api/images", params={"limit": 1}).json()
    assert set(page["items"][0]) >= {"id", "character_id", "url", "thumbnail_url", "flags", "caption"}


def test_bad_parameters_are_4xx(client: TestClient) -> None:
    assert client.get("/api/images", params={"cursor": "not-a-cursor"}).status_code == 400
    assert client.get("/api/images", params={"cursor": "W1td"}).status_code == 400
    assert client.get("/api/images", params={"limit": 0}).status_code == 422
    assert client.get("/api/images", params={"limit": 201}).status_code == 422
    assert client.get("/api/images", params={"flag": "ugly"}).status_code == 422
    assert client.get("/api/images", params={"character_id": "x"}).status_code == 422


def test_deep_pages_seek_on_the_index(settings: Settings) -> None:
    """The plan must walk an index in order: no sort step, whatever the cursor or the filter."""
    engine = create_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        db.add(Character(id="c" * 32, name="Plan", name_key="plan", trigger_word="plan"))
        db.commit()
    _bulk_rows(engine, "c" * 32, 2000, datetime(2021, 1, 1, tzinfo=UTC), same_time=False)
    after = (datetime(2021, 1, 1, 0, 10, tzinfo=UTC), "f" * 32)
    cursor = encode_cursor(*after)
    assert cursor and "=" not in cursor
    for character_id in (None, "c" * 32):
        query = grid_query(character_id=character_id, flag=None, after=after, limit=61)
        compiled = query.compile(engine)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        params = tuple(p.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(p, datetime) else p for p in params)
        with engine.connect() as connection:
            plan = " | ".join(
                str(row[-1]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params)
            )
        expected_index = "ix_images_character_created" if character_id else "ix_images_created"
        assert f"SEARCH images USING INDEX {expected_index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_listing_costs_a_fixed_number_of_queries(client: TestClient) -> None:
    """No query per row: the grid and the character list cost the same with 3 images or 30."""
    statements: list[str] = []
    engine = client.app.state.services.engine  # type: ignore[attr-defined]

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    costs = []
    for batch in (range(100, 103), range(103, 130)):
        character_id = client.post("/api/characters", json={"name": f"n{batch[0]}"}).json()["id"]
        files = [("files", (f"{s}.jpg", encode(photo(s, (64, 80))), "image/jpeg")) for s in batch]
        assert client.post(f"/api/characters/{character_id}/images", files=files).status_code == 201
        event.listen(engine, "before_cursor_execute", count)
        try:
            statements.clear()
            client.get("/api/images", params={"limit": 200})
            grid = len(statements)
            statements.clear()
            client.get("/api/characters")
            costs.append((grid, len(statements)))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert costs[0] == costs[1], costs
    assert costs[0][0] <= 2 and costs[0][1] <= 2, costs
