"""`isengard plan`: each memory profile's estimated GPU peak for a run, whether it fits, and what `auto` picks.

    isengard plan                          # this machine's GPU, a 1024 px character LoRA on the default base
    isengard plan --gpu-memory 12 --resolution 512 --json
    isengard plan --base flux2-klein-4b --gpu-memory 12

Pure arithmetic on the model's config (models/memory_plan.py): it needs no GPU and answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from isengard.config import load_settings
from isengard.models.bases import BASES, DEFAULT_BASE, get_base
from isengard.models.memory_plan import GIB, MemoryPlan, gb, plan_generation, plan_training
from isengard.models.planning import base_transformer_config

MIN_RESOLUTION = 64
MAX_RESOLUTION = 4096


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("plan", help="estimate GPU memory per memory profile and show what auto picks")
    parser.add_argument(
        "--base", default=DEFAULT_BASE, choices=list(BASES), help=f"the base model (default {DEFAULT_BASE})"
    )
    parser.add_argument(
        "--gpu-memory", type=float, default=None, metavar="GIB", help="GPU size in GB (default: this machine's GPU)"
    )
    parser.add_argument("--resolution", type=int, default=1024, metavar="PX", help="largest training resolution")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N")
    parser.add_argument("--rank", type=int, default=16, metavar="R", help="LoRA rank")
    parser.add_argument("--no-gradient-checkpointing", action="store_true", help="plan without gradient checkpointing")
    parser.add_argument("--generation", action="store_true", help="plan image generation instead of training")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=cmd_plan)


def _local_gpu_bytes() -> int | None:
    """This machine's first GPU's total memory; None without CUDA (torch is imported only to ask)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)


def _check(args: argparse.Namespace) -> str | None:
    if args.gpu_memory is not None and not 0 < args.gpu_memory <= 4096:
        return "--gpu-memory must be a size in GB between 0 and 4096"
    if not MIN_RESOLUTION <= args.resolution <= MAX_RESOLUTION or args.resolution % 16:
        return f"--resolution must be a multiple of 16 between {MIN_RESOLUTION} and {MAX_RESOLUTION}"
    if not 1 <= args.batch_size <= 64:
        return "--batch-size must be between 1 and 64"
    if not 1 <= args.rank <= 256:
        return "--rank must be between 1 and 256"
    return None


def plan_for(args: argparse.Namespace) -> MemoryPlan:
    config = base_transformer_config(load_settings(), args.base)
    gpu = int(args.gpu_memory * GIB) if args.gpu_memory is not None else _local_gpu_bytes()
    if args.generation:
        return plan_generation(
            transformer_config=config, resolution=args.resolution, batch_size=args.batch_size, gpu_bytes=gpu,
            base=args.base,
        )  # fmt: skip
    return plan_training(
        base=args.base,
        transformer_config=config,
        resolution=args.resolution,
        batch_size=args.batch_size,
        rank=args.rank,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        gpu_bytes=gpu,
    )


def cmd_plan(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"isengard plan: {problem}", file=sys.stderr)
        return 2
    plan = plan_for(args)
    if args.json:
        body = {
            "task": "generation" if args.generation else "training",
            "base": args.base,
            "resolution": args.resolution,
            "batch_size": args.batch_size,
            "rank": None if args.generation else args.rank,
            "gpu_bytes": plan.gpu_bytes,
            "auto": plan.chosen,
            "reason": plan.reason,
            "profiles": [estimate.model_dump() for estimate in plan.estimates],
        }
        print(json.dumps(body, indent=2))
        return 0
    what = "generation" if args.generation else f"training (batch {args.batch_size}, rank {args.rank})"
    where = "no GPU here (give --gpu-memory)" if plan.gpu_bytes is None else f"{gb(plan.gpu_bytes)} GPU"
    print(f"{get_base(args.base).label}: {what} at {args.resolution} px on {where}")
    print(f"{'profile':<13} {'estimated peak':>15}  fits")
    for estimate in plan.estimates:
        fits = {True: "yes", False: "no", None: "-"}[estimate.fits]
        marker = "  <- auto" if estimate.profile == plan.chosen else ""
        print(f"{estimate.profile:<13} {gb(estimate.estimated_peak_bytes):>15}  {fits}{marker}")
    print(f"auto: {plan.chosen or 'none'} ({plan.reason})")
    return 0
