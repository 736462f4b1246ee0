"""The job event union is published in the OpenAPI schema, so the web client's SSE code is typed from it."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from isengard.api.openapi_export import openapi_schema
from isengard.domain import ArtifactKind, JobEvent, JobStatus

SCHEMAS = "#/components/schemas/"


def event_models() -> list[type[BaseModel]]:
    union = typing.get_args(JobEvent)[0]  # Annotated[Union[...], discriminator]
    return list(typing.get_args(union))


def sample(model: type[BaseModel]) -> BaseModel:
    """An event with only its required fields set: what the schema must still describe completely."""
    values: dict[str, Any] = {"job_id": "j1", "at": datetime(2026, 1, 1, tzinfo=UTC)}
    fillers = {"status": JobStatus.RUNNING, "step": 3, "total": 10, "message": "m", "artifact_id": "a1"}
    fillers |= {"kind": ArtifactKind.SAMPLE, "name": "n.png"}
    for name, field in model.model_fields.items():
        if field.is_required() and name not in values:
            values[name] = fillers[name]
    return model(**values)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return openapi_schema()


def test_both_event_routes_name_their_event_data(schema: dict[str, Any]) -> None:
    def stream_schema(path: str) -> dict[str, Any]:
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        return dict(content["text/event-stream"]["schema"])

    assert stream_schema("/api/jobs/{job_id}/events") == {"$ref": SCHEMAS + "JobEventData"}
    # The global feed carries status changes only.
    assert stream_schema("/api/events") == {"$ref": SCHEMAS + "StatusEvent"}


def test_the_union_lists_every_event_model_by_its_type(schema: dict[str, Any]) -> None:
    union = schema["components"]["schemas"]["JobEventData"]
    mapping = union["discriminator"]["mapping"]
    expected = {model.model_fields["type"].default: SCHEMAS + model.__name__ for model in event_models()}
    assert mapping == expected
    assert sorted(item["$ref"] for item in union["oneOf"]) == sorted(expected.values())


@pytest.mark.parametrize("model", event_models(), ids=lambda m: m.__name__)
def test_every_field_an_event_is_sent_with_is_a_required_field_of_its_schema(
    model: type[BaseModel], schema: dict[str, Any]
) -> None:
    published = schema["components"]["schemas"][model.__name__]
    sent = sample(model).model_dump(mode="json")
    # Required means the client may read it without checking it is there; `type` is how it tells events apart.
    assert set(published["required"]) == set(sent)
    assert published["properties"]["type"]["const"] == sent["type"]
    assert published["additionalProperties"] is False
