"""The XAUTOCLAIM reply parser accepts both reply shapes: Redis 6.2 (two items) and 7.x (three items)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isengard.queue.jobs import parse_xautoclaim
from isengard.worker.context import latest_checkpoint_in


def test_redis_62_shape_with_entries() -> None:
    reply = [b"0-0", [[b"1700000000000-0", [b"job_id", b"abc"]], [b"1700000000001-0", [b"job_id", b"def"]]]]
    parsed = parse_xautoclaim(reply)
    assert parsed.next_start == "0-0"
    assert parsed.entries == [("1700000000000-0", {"job_id": "abc"}), ("1700000000001-0", {"job_id": "def"})]
    assert parsed.deleted == []


def test_redis_62_shape_reports_a_deleted_entry_as_a_bare_nil() -> None:
    # What redis-server 6.2.14 answers when one of two claimed entries was deleted from the stream.
    reply = [b"0-0", [[b"1700000000003-0", [b"job_id", b"xyz"]], None]]
    parsed = parse_xautoclaim(reply)
    assert parsed.entries == [("1700000000003-0", {"job_id": "xyz"})]
    assert parsed.deleted == []
    assert parsed.deleted_without_id == 1


def test_an_entry_with_nil_fields_counts_as_deleted() -> None:
    reply = [b"1700000000005-0", [[b"1700000000002-0", None], [b"1700000000003-0", [b"job_id", b"xyz"]]]]
    parsed = parse_xautoclaim(reply)
    assert parsed.next_start == "1700000000005-0"
    assert parsed.entries == [("1700000000003-0", {"job_id": "xyz"})]
    assert parsed.deleted == ["1700000000002-0"]


def test_redis_7_shape_with_deleted_ids() -> None:
    reply = [b"0-0", [[b"1700000000003-0", [b"job_id", b"xyz"]]], [b"1700000000002-0", b"1700000000004-0"]]
    parsed = parse_xautoclaim(reply)
    assert parsed.entries == [("1700000000003-0", {"job_id": "xyz"})]
    assert parsed.deleted == ["1700000000002-0", "1700000000004-0"]


def test_empty_replies_of_both_shapes() -> None:
    assert parse_xautoclaim([b"0-0", []]).entries == []
    seven = parse_xautoclaim(["0-0", [], []])
    assert seven.entries == [] and seven.deleted == []


def test_already_decoded_reply() -> None:
    parsed = parse_xautoclaim(["0-0", [("1-0", {"job_id": "abc"})]])
    assert parsed.entries == [("1-0", {"job_id": "abc"})]


@pytest.mark.parametrize("reply", [[b"0-0"], [b"0-0", [], [], []]])
def test_unknown_shapes_are_refused(reply: list[object]) -> None:
    with pytest.raises(ValueError, match="XAUTOCLAIM"):
        parse_xautoclaim(reply)


def test_latest_checkpoint_needs_the_complete_marker(tmp_path: Path) -> None:
    assert latest_checkpoint_in(tmp_path) is None
    for step, complete in ((5, True), (10, True), (15, False)):
        folder = tmp_path / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "COMPLETE").write_bytes(b"")
    (tmp_path / "checkpoints" / "notes").mkdir()
    # step 15 was being written when the worker died: it does not count.
    assert latest_checkpoint_in(tmp_path) == tmp_path / "checkpoints" / "step-000010"
