"""The quality report on a crafted dataset with known flaws."""

from __future__ import annotations

from fastapi.testclient import TestClient

from isengard.imaging import BLUR_THRESHOLD
from tests.image_samples import blurred, encode, make_zip, photo


def test_report_finds_each_known_flaw(client: TestClient) -> None:
    character_id = client.post("/api/characters", json={"name": "Pippin"}).json()["id"]
    archive = make_zip(
        {
            "good1.jpg": encode(photo(40, (1024, 1280))),
            "good1.txt": b"[trigger] on a hill",
            "good2.jpg": encode(photo(41, (1024, 1280))),
            "good2.txt": b"[trigger] eating",
            "good3.jpg": encode(photo(42, (1280, 1024))),
            "small.jpg": encode(photo(43, (400, 500))),
            "small.txt": b"[trigger] small",
            "soft.jpg": encode(blurred(photo(44, (1024, 1024)))),
            "again.jpg": encode(photo(40, (1024, 1280)).resize((900, 1125)), quality=75),
            "banner.jpg": encode(photo(45, (1800, 600))),
        }
    )
    response = client.post(
        f"/api/characters/{character_id}/images", files=[("files", ("set.zip", archive, "application/zip"))]
    )
    assert response.status_code == 201 and response.json()["stored"] == 7, response.text
    ids = {r["image"]["original_name"]: r["image"]["id"] for r in response.json()["results"]}

    report = client.get(f"/api/characters/{character_id}/dataset/report", params={"resolution": 1024}).json()
    assert report["count"] == 7 and report["resolution"] == 1024
    assert {i["id"] for i in report["too_small"]} == {ids["small.jpg"], ids["again.jpg"], ids["banner.jpg"]}
    assert [[i["id"] for i in group] for group in report["near_duplicate_groups"]] == [
        [ids["good1.jpg"], ids["again.jpg"]]
    ]
    assert [i["id"] for i in report["blurry"]] == [ids["soft.jpg"]]
    assert report["blurry"][0]["blur_score"] < BLUR_THRESHOLD == report["blur_threshold"]
    assert [i["id"] for i in report["extreme_aspect"]] == [ids["banner.jpg"]]
    assert report["extreme_aspect"][0]["aspect_ratio"] == 3.0
    assert {i["id"] for i in report["missing_captions"]} == {
        ids[name] for name in ("good3.jpg", "soft.jpg", "again.jpg", "banner.jpg")
    }
    histogram = {bucket["label"]: bucket["count"] for bucket in report["resolution_histogram"]}
    assert histogram == {"0-511 px": 1, "512-767 px": 1, "768-1023 px": 1, "1024-1535 px": 4, "1536+ px": 0}
    assert report["verdict"] == (
        "7 images, fewer than the 10-30 that train well, 3 under 1024 px, 1 near-duplicate pair, 1 blurry, "
        "1 with an extreme aspect ratio, 4 without a caption"
    )

    # The same dataset judged for 512 px training: only the 400 px one is too small.
    at_512 = client.get(f"/api/characters/{character_id}/dataset/report", params={"resolution": 512}).json()
    assert [i["id"] for i in at_512["too_small"]] == [ids["small.jpg"]]
    assert "1 under 512 px" in at_512["verdict"]

    # Flags stored at upload match; the grid filters by them.
    blurry_page = client.get("/api/images", params={"character_id": character_id, "flag": "blurry"}).json()
    assert [i["id"] for i in blurry_page["items"]] == [ids["soft.jpg"]]
    small_page = client.get("/api/images", params={"character_id": character_id, "flag": "small"}).json()
    assert [i["id"] for i in small_page["items"]] == [ids["small.jpg"]]
    extreme_page = client.get("/api/images", params={"character_id": character_id, "flag": "extreme_aspect"}).json()
    assert [i["id"] for i in extreme_page["items"]] == [ids["banner.jpg"]]
    assert client.get("/api/images", params={"flag": "missing_caption"}).json()["items"][0]["caption"] == ""


def test_report_verdicts_for_empty_and_clean_datasets(client: TestClient) -> None:
    character_id = client.post("/api/characters", json={"name": "Merry"}).json()["id"]
    url = f"/api/characters/{character_id}/dataset/report"
    assert client.get(url).json()["verdict"].startswith("no images yet")
    assert client.get(url, params={"resolution": 32}).status_code == 422
    files = [("files", (f"{i}.jpg", encode(photo(60 + i, (512, 640))), "image/jpeg")) for i in range(10)]
    files += [("files", (f"{i}.txt", b"[trigger] portrait", "text/plain")) for i in range(10)]
    assert client.post(f"/api/characters/{character_id}/images", files=files).json()["stored"] == 10
    assert client.get(url, params={"resolution": 512}).json()["verdict"] == "10 images, ready to train at 512 px"


def test_without_a_resolution_sizes_are_judged_against_what_a_default_run_trains_at(client: TestClient) -> None:
    character_id = client.post("/api/characters", json={"name": "Default Res"}).json()["id"]
    defaults = next(p for p in client.get("/api/training/plugins").json() if p["name"] == "flux-lora")["defaults"]
    report = client.get(f"/api/characters/{character_id}/dataset/report").json()
    # The form's rule: the smallest of the run's resolutions (not a fixed 1024 px whatever the run will use).
    assert report["resolution"] == min(defaults["resolutions"])
    assert report["recommended_images"] == client.get("/api/health").json()["recommended_images"]
