"""Request and response models of the LoRA library routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from isengard.api.support.params import ID_PATTERN
from isengard.api.support.text import RequestModel, column_max_length
from isengard.db.models import Lora

LoraSource = Literal["trained", "checkpoint", "imported"]
DefaultReason = Literal["chosen", "recommended", "newest"]


def lora_file_url(lora_id: str) -> str:
    return f"/api/loras/{lora_id}/file"


class LoraJobSummary(BaseModel):
    id: str
    name: str
    status: str
    plugin: str
    created_at: datetime


class LoraImportRefused(BaseModel):
    """422 of an import: why the file was refused; `candidates` when the file fits several bases and does not say
    which (import it again with `base` set to one of them)."""

    detail: str | list[dict[str, Any]]
    message: str | None = None
    candidates: list[str] | None = Field(default=None, description="the bases to choose from, when asked")


class LoraOut(BaseModel):
    id: str
    name: str
    character_id: str | None
    job_id: str | None
    source: LoraSource
    step: int | None = None
    rank: int | None = None
    alpha: float | None = None
    base_model: str
    base: str = Field(description="the base model it works with (a registry name), or 'unknown'")
    trigger_word: str | None = None
    bytes: int
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    url: str
    file_present: bool = True
    job: LoraJobSummary | None = None
    default_reason: DefaultReason | None = Field(
        default=None,
        description="set (in the library's listing) when it is its character's default LoRA: chosen by the person, "
        "the recommended checkpoint of the character's newest run, or its newest LoRA",
    )

    @classmethod
    def from_row(cls, row: Lora, *, file_present: bool = True, job: LoraJobSummary | None = None) -> LoraOut:
        return cls(
            id=row.id,
            name=row.name,
            character_id=row.character_id,
            job_id=row.job_id,
            source=row.source,  # type: ignore[arg-type]
            step=row.step,
            rank=row.rank,
            alpha=row.alpha,
            base_model=row.base_model,
            base=row.base,
            trigger_word=row.trigger_word,
            bytes=row.bytes,
            meta=row.meta or {},
            created_at=row.created_at,
            url=lora_file_url(row.id),
            file_present=file_present,
            job=job,
        )


class LoraPage(BaseModel):
    items: list[LoraOut]
    next_cursor: str | None


class LoraUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=column_max_length(Lora.name))
    trigger_word: str | None = Field(default=None, min_length=1, max_length=column_max_length(Lora.trigger_word))


class DefaultLoraOut(BaseModel):
    """The LoRA Generate attaches for a character, and why; `lora` is None while the character has none."""

    character_id: str
    lora: LoraOut | None
    reason: DefaultReason | None
    recommended_lora_id: str | None = Field(
        description="the recommended checkpoint of the character's newest run, whether or not it is the default"
    )


class DefaultLoraChoice(RequestModel):
    lora_id: str | None = Field(
        description="one of the character's LoRAs to keep as its default; null: back to the automatic choice",
        pattern=ID_PATTERN,
    )
