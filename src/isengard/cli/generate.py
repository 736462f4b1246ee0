"""`isengard generate`: generate images from a terminal through the HTTP API, with a progress bar.

    isengard generate --lora "Ada v1" "portrait in the rain" --seed 7 -n 4 --out ./images

The LoRA is named by its id, its name in the library, or a character's name (its newest LoRA); the start of a
word of a name is enough when only one matches ("Ada" for "Ada Lovelace"). Images land in --out as PNG files with
their parameters embedded, named as the web's download names them (`ada_lovelace-7.png`). Ctrl-C cancels the job
on the server.
"""

from __future__ import annotations

import argparse
import sys
from email.message import Message
from pathlib import Path
from typing import Any

import httpx

from isengard.cli.client import ApiError, IsengardClient, add_api_arguments, follow_with_bar


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("generate", help="generate images with a LoRA through the API")
    parser.add_argument("prompt", help="what to generate")
    parser.add_argument("--lora", action="append", default=[], help="LoRA id or name (repeatable); NAME:WEIGHT")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first image (random when absent)")
    parser.add_argument("-n", "--num-images", type=int, default=1, help="number of images (each gets seed+i)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--guidance", type=float, default=3.5)
    parser.add_argument("--plugin", default="diffusers", help="image plugin (diffusers or comfyui)")
    parser.add_argument("--character", default=None, help="character id (default: the first LoRA's character)")
    parser.add_argument("--no-trigger-word", action="store_true", help="do not add the character's trigger word")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder to write the images to")
    add_api_arguments(parser)
    parser.set_defaults(func=cmd_generate)


def _split_weight(spec: str) -> tuple[str, float]:
    name, sep, weight = spec.rpartition(":")
    if sep and name:
        try:
            return name, float(weight)
        except ValueError:
            pass
    return spec, 1.0


def resolve_lora(client: IsengardClient, spec: str) -> dict[str, Any]:
    """A LoRA by id, by exact (case-insensitive) name, or by a character's name (its newest LoRA); the API tells
    an unknown name (404) and lists the choices of an ambiguous one (409)."""
    name, weight = _split_weight(spec)
    lora = client.request("GET", "/api/loras/resolve", params={"name": name})
    return {"lora_id": lora["id"], "weight": weight}


def download_name(response: httpx.Response, *, fallback: str) -> str:
    """The file name of a download's `Content-Disposition`, reduced to a plain name (never a path)."""
    message = Message()
    message["content-disposition"] = response.headers.get("content-disposition", "")
    name = Path(str(message.get_param("filename", "", header="content-disposition"))).name
    return name if name and not name.startswith(".") else fallback


def download(client: IsengardClient, job_id: str, out: Path) -> list[Path]:
    page = client.request("GET", "/api/generations", params={"job_id": job_id, "limit": 200})
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for item in sorted(page["items"], key=lambda i: (i["params"].get("index", 0), i["seed"])):
        response = client.http.get(item["url"])
        if response.status_code >= 400:
            raise ApiError(response.status_code, f"could not download {item['url']}")
        # The name the web's download gives (`<character>-<seed>.png`): the API owns it.
        target = out / download_name(response, fallback=f"{job_id[:8]}-{item['seed']}.png")
        target.write_bytes(response.content)
        written.append(target)
    return written


def cmd_generate(args: argparse.Namespace) -> int:
    client = IsengardClient(args.api, token=args.token)
    job_id: str | None = None
    try:
        body = {
            "plugin": args.plugin,
            "prompt": args.prompt,
            "seed": args.seed,
            "num_images": args.num_images,
            "width": args.width,
            "height": args.height,
            "steps": args.steps,
            "guidance": args.guidance,
            "character_id": args.character,
            "add_trigger_word": not args.no_trigger_word,
            "loras": [resolve_lora(client, spec) for spec in args.lora],
        }
        job_id = str(client.request("POST", "/api/generation", json=body)["id"])
        print(f"job {job_id} queued", file=sys.stderr)
        job = follow_with_bar(client, job_id, description="generating")
        if job["status"] != "succeeded":
            print(f"isengard: the job {job['status']}: {job.get('error') or ''}".rstrip(": "), file=sys.stderr)
            return 1
        for path in download(client, job_id, args.out):
            print(path)
        return 0
    except KeyboardInterrupt:
        if job_id is not None:
            client.request("POST", f"/api/jobs/{job_id}/cancel")
            print(f"\nisengard: cancelled job {job_id}", file=sys.stderr)
        return 130
    except ApiError as exc:
        print(f"isengard: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        client.close()
