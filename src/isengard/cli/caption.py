"""`isengard caption`: caption a character's dataset with a vision-language model, through a running Isengard API.

    isengard caption --character "Anna" [--only-empty] [--overwrite] [--prefix "photo of"] [--api URL] [--token T]

Queues a caption job and follows it image by image with a progress bar. Existing captions are kept unless
--overwrite is given. `isengard train --auto-caption` runs the same job over the images without a caption first.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from isengard.cli.client import ApiError, IsengardClient, add_api_arguments, follow_with_bar, run_following

DEFAULT_PLUGIN = "qwen-vl"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("caption", help="caption a character's images automatically (via the API)")
    parser.add_argument("--character", required=True, help="character name")
    parser.add_argument("--only-empty", action="store_true", help="caption only the images without a caption")
    parser.add_argument("--overwrite", action="store_true", help="replace the captions images already have")
    add_style_arguments(parser)
    add_api_arguments(parser)
    parser.set_defaults(func=cmd_caption)


def add_style_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("caption style")
    group.add_argument(
        "--caption-plugin", default=DEFAULT_PLUGIN, help=f"captioning plugin (default: {DEFAULT_PLUGIN})"
    )
    group.add_argument(
        "--trigger-placement", choices=["first", "replace_subject"], default="first", help="where [trigger] goes"
    )
    group.add_argument("--max-words", type=int, default=None, help="longest caption, in words")
    group.add_argument("--prefix", default="", help="text put before every caption")
    group.add_argument("--suffix", default="", help="text put after every caption")
    group.add_argument(
        "--keep-identity", action="store_true", help="let captions describe hair, eyes, skin, age and body"
    )


def caption_request(args: argparse.Namespace, *, scope: str, overwrite: bool) -> dict[str, Any]:
    style: dict[str, Any] = {
        "trigger_placement": args.trigger_placement,
        "prefix": args.prefix,
        "suffix": args.suffix,
        "leave_identity_out": not args.keep_identity,
    }
    if args.max_words is not None:
        style["max_words"] = args.max_words
    return {"plugin": args.caption_plugin, "scope": scope, "overwrite": overwrite, "style": style}


NOTHING_TO_CAPTION = "nothing to caption"


def run_caption_job(client: IsengardClient, character: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
    """Submit, follow with a bar (one tick per image), and print what was written; returns the finished job, or
    None (after saying why) when the API found nothing to caption, which is not a failure."""
    try:
        job = client.request("POST", f"/api/characters/{character['id']}/captions/auto", json=body)
    except ApiError as exc:
        if exc.status != 422 or not exc.detail.startswith(NOTHING_TO_CAPTION):
            raise
        print(exc.detail)
        return None
    print(f"caption job {job['id']} queued ({job['config']['images']} image(s))")
    written: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "caption" and event.get("written"):
            written.append(f"  {event['index']}/{event['total']}: {event['caption']}")

    finished = follow_with_bar(client, job["id"], description=f"captions {character['name']}", on_event=on_event,
                               unit="image")  # fmt: skip
    print("\n".join(written))
    return finished


def cmd_caption(args: argparse.Namespace) -> int:
    return run_following("caption", IsengardClient(args.api, token=args.token), lambda client: _caption(client, args))


def _caption(client: IsengardClient, args: argparse.Namespace) -> int:
    character = client.find_character(args.character)
    if character is None:
        raise ApiError(404, f"no character named '{args.character}'")
    body = caption_request(args, scope="empty" if args.only_empty else "all", overwrite=args.overwrite)
    job = run_caption_job(client, character, body)
    if job is None:
        return 0
    if job["status"] != "succeeded":
        print(f"captioning {job['status']}: {job.get('error') or ''}".rstrip(), file=sys.stderr)
        return 1
    result = job.get("result") or {}
    print(f"captioned {result.get('captioned', 0)} image(s); kept {job['config'].get('kept', 0)} existing caption(s)")
    return 0
