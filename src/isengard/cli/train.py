"""`isengard train`: train a character LoRA from a folder of photos through a running Isengard API.

    isengard train --character "Anna" --images ./photos [--steps 2000] [--rank 16] [--auto-caption] [--api URL]

Creates the character when it does not exist, uploads the images (a same-named .txt file beside an image is its
caption), captions the images still without one when --auto-caption is given, submits the run, follows it live
with a progress bar, and prints where the LoRA is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from isengard.cli.caption import add_style_arguments, caption_request, run_caption_job
from isengard.cli.client import (
    ApiError,
    IsengardClient,
    add_api_arguments,
    follow_with_bar,
    image_files,
    run_following,
)
from isengard.models.bases import BASES, DEFAULT_BASE

DEFAULT_CAPTION = "a photo of [trigger]"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a character LoRA from a folder of images (via the API)")
    parser.add_argument("--character", required=True, help="character name (created when it does not exist)")
    parser.add_argument("--images", type=Path, help="folder of photos to upload (optional if already uploaded)")
    parser.add_argument("--trigger-word", default=None, help="trigger word of a new character")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the plugin's)")
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank (default: the plugin's)")
    parser.add_argument("--plugin", default="flux-lora", help="training plugin (default: flux-lora)")
    parser.add_argument(
        "--base", default=None, choices=list(BASES), help=f"base model to train on (default: {DEFAULT_BASE})"
    )
    parser.add_argument("--preset", default=None, help="name of a saved training preset to start from")
    parser.add_argument(
        "--caption", default=DEFAULT_CAPTION, help=f"caption of images without a .txt (default: '{DEFAULT_CAPTION}')"
    )
    parser.add_argument(
        "--auto-caption",
        action="store_true",
        help="caption the images without a caption with a vision-language model before training (instead of --caption)",
    )
    add_style_arguments(parser)
    add_api_arguments(parser)
    parser.add_argument("--no-follow", action="store_true", help="submit and return without following progress")
    parser.set_defaults(func=cmd_train)


def upload_folder(client: IsengardClient, character_id: str, folder: Path, default_caption: str) -> int:
    paths = image_files(folder)
    if not paths:
        raise ApiError(0, f"no images in {folder}")
    stored = 0
    by_name = {p.name: p for p in paths}
    for result in client.upload_images(character_id, paths):
        status = result.get("status")
        if status == "rejected":
            print(f"  skipped {result.get('name')}: {result.get('reason')}", file=sys.stderr)
            continue
        image = result.get("image")
        if status != "stored" or not image:
            continue
        stored += 1
        source = by_name.get(str(result.get("name")))
        sidecar = source.with_suffix(".txt") if source else None
        caption = sidecar.read_text(encoding="utf-8").strip() if sidecar and sidecar.exists() else default_caption
        if caption and not image.get("caption"):
            client.set_caption(image["id"], caption)
    return stored


def _preset_id(client: IsengardClient, name: str) -> str:
    for preset in client.request("GET", "/api/training/presets"):
        if preset["name"].casefold() == name.casefold():
            return str(preset["id"])
    raise ApiError(404, f"no training preset named '{name}'")


def cmd_train(args: argparse.Namespace) -> int:
    return run_following("train", IsengardClient(args.api, token=args.token), lambda client: _train(client, args))


def _train(client: IsengardClient, args: argparse.Namespace) -> int:
    character = client.find_character(args.character)
    if character is None:
        character = client.create_character(args.character, args.trigger_word)
        print(f"created character '{character['name']}' (trigger word: {character['trigger_word']})")
    if args.images is not None:
        # With --auto-caption an image without a .txt stays uncaptioned, for the captioner to describe.
        default_caption = "" if args.auto_caption else args.caption
        stored = upload_folder(client, character["id"], args.images, default_caption)
        print(f"uploaded {stored} new image(s) from {args.images}")
    if args.auto_caption and not auto_caption(client, character, args):
        return 1
    config: dict[str, Any] = {}
    if args.steps is not None:
        config["steps"] = args.steps
    if args.rank is not None:
        config["rank"] = args.rank
    if args.base is not None:
        config["base"] = args.base
    body: dict[str, Any] = {"character_id": character["id"], "plugin": args.plugin, "config": config}
    if args.preset:
        body["preset_id"] = _preset_id(client, args.preset)
    job = client.request("POST", "/api/training", json=body)
    print(f"training job {job['id']} queued ({job['config'].get('steps')} steps)")
    if args.no_follow:
        return 0
    job = follow_with_bar(client, job["id"], description=character["name"])
    return report(client, job)


def auto_caption(client: IsengardClient, character: dict[str, Any], args: argparse.Namespace) -> bool:
    """Caption the images without a caption (a placeholder counts as none: the API judges); True when training may
    go on (done, or nothing to caption)."""
    job = run_caption_job(client, character, caption_request(args, scope="empty", overwrite=False))
    if job is None:
        return True
    if job["status"] != "succeeded":
        print(f"auto-captioning {job['status']}: {job.get('error') or ''}; not training".rstrip(), file=sys.stderr)
        return False
    return True


def report(client: IsengardClient, job: dict[str, Any]) -> int:
    if job["status"] != "succeeded":
        print(f"training {job['status']}: {job.get('error') or ''}".rstrip(), file=sys.stderr)
        return 1
    result = job.get("result") or {}
    print(f"done in {job.get('duration_seconds') or 0:.0f} s")
    if result.get("lora_path"):
        print(f"LoRA: {result['lora_path']} (in the data folder)")
    lora = next((a for a in client.artifacts(job["id"]) if a["kind"] == "lora"), None)
    if lora is not None:
        print(f"download: {str(client.http.base_url).rstrip('/')}/api/jobs/{job['id']}/artifacts/{lora['id']}/file")
    return 0
