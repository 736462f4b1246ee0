"""Comparison grids: many renders (prompt x seed rows, LoRA-variant columns) composed into one labelled image.

The labels and the recorded parameters say what each cell really was: the prompt the model got (the trigger word in
place of `[trigger]`), and per cell its own size, seed and LoRA — a grid is many images, not one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from isengard.domain import LoraRef
from isengard.plugins.api import substitute_trigger
from isengard.plugins.image.request import GridSpec, ImageRequest, lora_summary, with_trigger_word

HEADER_HEIGHT = 28
ROW_LABEL_WIDTH = 180
PADDING = 4
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)


@dataclass(frozen=True)
class GridCell:
    row: int
    column: int
    prompt: str
    seed: int
    loras: list[LoraRef]


def grid_cells(spec: GridSpec) -> list[GridCell]:
    cells = []
    row = 0
    for prompt in spec.prompts:
        for seed in spec.seeds:
            for column_index, column in enumerate(spec.columns):
                cells.append(GridCell(row, column_index, prompt, seed, list(column.loras)))
            row += 1
    return cells


def cell_prompt(prompt: str, request: ImageRequest | None) -> str:
    """The prompt a cell is rendered with, which its label and parameters show."""
    if request is None:
        return prompt
    return with_trigger_word(prompt, request.trigger_word, request.add_trigger_word)


def column_labels(spec: GridSpec, request: ImageRequest | None = None) -> list[str]:
    trigger_word = request.trigger_word if request is not None else None
    labels = []
    for index, column in enumerate(spec.columns):
        if column.label:
            labels.append(substitute_trigger(column.label, trigger_word) if trigger_word else column.label)
        elif column.loras:
            labels.append(" + ".join(f"{ref.name or ref.lora_id[:8]} @{ref.weight:g}" for ref in column.loras))
        else:
            labels.append(f"no LoRA #{index + 1}" if len(spec.columns) > 1 else "no LoRA")
    return labels


def row_labels(spec: GridSpec, request: ImageRequest | None = None) -> list[str]:
    return [f"{cell_prompt(prompt, request)}\nseed {seed}" for prompt in spec.prompts for seed in spec.seeds]


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """Shorten a label with an ellipsis so it stays inside its cell."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, max_lines: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}".strip()
            if draw.textlength(candidate, font=font) <= width or not current:
                current = candidate
            else:
                lines.append(current)
                current = word
        lines.append(current)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1] + " …"]
    return [_fit(draw, line, font, width) for line in lines]


def compose_grid(images: dict[tuple[int, int], Image.Image], columns: list[str], rows: list[str]) -> Image.Image:
    """Lay the cell images out under column headers and beside row labels."""
    first = next(iter(images.values()))
    cell_w, cell_h = first.size
    width = ROW_LABEL_WIDTH + len(columns) * (cell_w + PADDING) + PADDING
    height = HEADER_HEIGHT + len(rows) * (cell_h + PADDING) + PADDING
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for column, label in enumerate(columns):
        x = ROW_LABEL_WIDTH + PADDING + column * (cell_w + PADDING)
        draw.text((x + 2, 8), _fit(draw, label, font, cell_w - 4), fill=TEXT, font=font)
    line_height = 14
    for row, label in enumerate(rows):
        y = HEADER_HEIGHT + row * (cell_h + PADDING)
        max_lines = max(1, (cell_h - 8) // line_height)
        for offset, line in enumerate(_wrap(draw, label, font, ROW_LABEL_WIDTH - 12, max_lines)):
            draw.text((6, y + 4 + offset * line_height), line, fill=TEXT, font=font)
    for (row, column), image in images.items():
        x = ROW_LABEL_WIDTH + PADDING + column * (cell_w + PADDING)
        y = HEADER_HEIGHT + row * (cell_h + PADDING)
        canvas.paste(image.convert("RGB").resize((cell_w, cell_h)), (x, y))
    return canvas


def render_grid(
    spec: GridSpec, render: Callable[[GridCell, int, int], Image.Image], request: ImageRequest | None = None
) -> Image.Image:
    """Render every cell with `render(cell, index, total)` and compose the grid, labelled with what was rendered."""
    cells = grid_cells(spec)
    images = {(cell.row, cell.column): render(cell, index, len(cells)) for index, cell in enumerate(cells)}
    return compose_grid(images, column_labels(spec, request), row_labels(spec, request))


def grid_params(
    spec: GridSpec, request: ImageRequest, common: dict[str, Any], grid_size: tuple[int, int]
) -> dict[str, Any]:
    """What a grid image records about itself (PNG text and artifact metadata), whichever engine rendered it.

    `common` holds the engine's parameters for one render (its width and height are a cell's); the grid's own
    width and height are the composed image's, and each cell lists its prompt, seed, size and LoRAs.
    """
    cell_size = {"width": common.get("width"), "height": common.get("height")}
    labels = column_labels(spec, request)
    prompts = [cell_prompt(prompt, request) for prompt in spec.prompts]
    return {
        **common,
        "kind": "grid",
        "width": grid_size[0],
        "height": grid_size[1],
        "prompt": " | ".join(prompts),
        "prompts": prompts,
        "seeds": spec.seeds,
        "rows": row_labels(spec, request),
        "columns": [
            {"label": label, "loras": lora_summary(column.loras)}
            for label, column in zip(labels, spec.columns, strict=True)
        ],
        "cells": [
            {
                "row": cell.row,
                "column": cell.column,
                "label": labels[cell.column],
                "prompt": cell_prompt(cell.prompt, request),
                "seed": cell.seed,
                **cell_size,
                "loras": lora_summary(cell.loras),
            }
            for cell in grid_cells(spec)
        ],
        "trigger_word": request.trigger_word,
        "add_trigger_word": request.add_trigger_word,
    }
