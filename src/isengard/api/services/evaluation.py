"""Submitting the evaluation job of a LoRA: its fixed prompts x seeds, the image plugin's request, the references."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy.orm import Session

from isengard.api.schemas.evaluation import LoraEvaluationCreate
from isengard.api.services.dataset.characters import referenced_character
from isengard.api.services.dataset.images import dataset_query
from isengard.api.services.generation.submit import usable_image_plugin, validated_image_payload
from isengard.api.services.jobs.manage import submit_job
from isengard.api.services.loras.library import resolve_lora_refs
from isengard.api.state import Services
from isengard.api.support.rows import get_or_404
from isengard.dataset.image_files import original_relative
from isengard.db.models import Job, Lora
from isengard.domain import JobKind
from isengard.evaluation.lora_job import LoraEvaluationJob
from isengard.jobs.states import Submission


def submit_lora_evaluation(services: Services, db: Session, lora_id: str, body: LoraEvaluationCreate) -> Job:
    lora = get_or_404(db, Lora, lora_id, f"no LoRA with id '{lora_id}'")
    plugin = usable_image_plugin(services, body.plugin)
    refs = resolve_lora_refs(db, services.data, [(lora.id, body.weight)])
    character_id = body.character_id or lora.character_id
    if character_id is None:
        raise HTTPException(
            status_code=422, detail="this LoRA belongs to no character: name the character_id whose photos it shows"
        )
    character = referenced_character(db, character_id)
    request = validated_image_payload(
        plugin,
        {
            "prompt": body.prompts[0],
            "width": body.width,
            "height": body.height,
            "steps": body.steps,
            "guidance": body.guidance,
            "loras": [ref.model_dump() for ref in refs],
            "character_id": character.id,
            "trigger_word": character.trigger_word,
            "add_trigger_word": True,
        },
    )
    for key in ("prompt", "seed", "num_images", "grid"):
        request.pop(key, None)
    references = [original_relative(image) for image in db.scalars(dataset_query(character.id))]
    payload = LoraEvaluationJob(
        lora_id=lora.id,
        step=lora.step or 0,
        prompts=body.prompts,
        seeds=body.seeds,
        request=request,
        references=references,
        trigger_word=character.trigger_word,
    ).model_dump(mode="json")
    config = {"prompts": len(body.prompts), "seeds": len(body.seeds), "width": body.width, "steps": body.steps}
    name = f"evaluate {lora.name}"[:200]
    submission = Submission(JobKind.EVALUATION, plugin.name, payload, config, name, character_id=character.id)
    return submit_job(services, db, submission)
