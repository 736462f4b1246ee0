"""`isengard evaluate`: a training run's scores per checkpoint, the recommended checkpoint and the verdicts.

    isengard evaluate --run 3 [--character "Anna"] [--json]

--run is a run number (with --character when several characters have that run) or a job id. The table and the pick
come from the API, the same as the run page shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from isengard.cli.client import ApiError, IsengardClient, add_api_arguments


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="show a training run's scores and recommended checkpoint")
    parser.add_argument("--run", required=True, help="run number (see --character) or job id")
    parser.add_argument("--character", default=None, help="character name, when several have a run of that number")
    parser.add_argument("--json", action="store_true", help="print the whole evaluation as JSON")
    add_api_arguments(parser)
    parser.set_defaults(func=cmd_evaluate)


def find_run(client: IsengardClient, run: str, character: str | None) -> str:
    """The job id of a run given by number (optionally within a character) or by id."""
    if not run.isdigit():
        return str(client.request("GET", f"/api/jobs/{run}")["id"])
    params: dict[str, Any] = {"kind": "training", "limit": 200}
    if character is not None:
        found = client.find_character(character)
        if found is None:
            raise ApiError(404, f"no character named '{character}'")
        params["character_id"] = found["id"]
    runs = [
        job for job in client.request("GET", "/api/jobs", params=params)["items"] if job.get("run_number") == int(run)
    ]
    if not runs:
        raise ApiError(404, f"no training run number {run}" + (f" for {character}" if character else ""))
    if len(runs) > 1:
        raise ApiError(409, f"{len(runs)} characters have a run {run}: name one with --character")
    return str(runs[0]["id"])


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def render(evaluation: dict[str, Any]) -> str:
    lines = []
    if evaluation["status"] != "available":
        reason = evaluation.get("reason") or "no sample has been scored yet"
        lines.append(f"Scores not available: {reason}")
    if evaluation.get("choice"):
        lines.append(f"Identity: {evaluation['choice']} ({evaluation.get('references', 0)} reference photo(s))")
    if evaluation["checkpoints"]:
        lines.append(f"{'step':>8}  {'identity':>8}  {'adherence':>9}  {'copying':>7}  {'no face':>7}  ")
        for row in evaluation["checkpoints"]:
            mark = "  ← recommended" if row["recommended"] else ""
            lines.append(
                f"{row['step']:>8}  {_number(row['identity']):>8}  {_number(row['adherence']):>9}  "
                f"{_number(row['copying']):>7}  {row['no_subject']:>7}{mark}"
            )
    if evaluation.get("recommended_step") is not None:
        lines.append(f"Recommended checkpoint: step {evaluation['recommended_step']}")
    lines.extend(f"- {verdict['message']}" for verdict in evaluation["verdicts"])
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    client = IsengardClient(args.api, token=args.token)
    try:
        job_id = find_run(client, args.run, args.character)
        evaluation = client.request("GET", f"/api/jobs/{job_id}/evaluation")
    except ApiError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(evaluation, indent=2) if args.json else render(evaluation))
    return 0
