"""The caption linter: what a character dataset's captions should and should not say.

Per caption: it says more than "a photo of [trigger]" (a placeholder teaches nothing about the photo); the trigger
word (or `[trigger]`) is there; no identity traits (`identity_words`) are described; it is
not empty; it fits the text encoders (T5's 512 tokens, the hard limit for FLUX; CLIP's 77, past which CLIP reads
nothing). Across captions: no two are near-identical, or the LoRA binds to the shared words instead of the subject.
Each finding names the image and the words, and carries the fixed caption when one click can fix it.

Token counts are estimated without loading a tokenizer (the API must answer fast and may have no model on disk):
one token per short word or punctuation mark and more for long words, which errs on the long side for English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel, Field

from isengard.captions.identity_words import DEFAULT_LANGUAGE, find_identity_terms
from isengard.captions.style import limit_words, remove_identity_terms
from isengard.captions.trigger import is_blank_caption, mentions_trigger, prepend_trigger, substitute_trigger

T5_MAX_TOKENS = 512
CLIP_MAX_TOKENS = 77
NEAR_IDENTICAL_RATIO = 0.9  # word-sequence similarity at or above which two captions count as near-identical
MIN_WORDS_TO_COMPARE = 4  # shorter captions ("[trigger]", "[trigger], portrait") say too little to compare

FindingKind = Literal[
    "empty", "placeholder", "missing_trigger", "identity", "near_identical", "too_long_t5", "too_long_clip"
]
Severity = Literal["error", "warning", "info"]

_TOKEN = re.compile(r"\w+|[^\w\s]")


class CaptionFinding(BaseModel):
    """One problem with one image's caption."""

    image_id: str
    kind: FindingKind
    severity: Severity
    message: str
    words: list[str] = Field(default_factory=list, description="the words the finding is about")
    fixed_caption: str | None = Field(default=None, description="the caption with the problem fixed, when it can be")
    other_image_ids: list[str] = Field(default_factory=list, description="near-identical captions: the other images")


@dataclass(frozen=True)
class CaptionedImage:
    image_id: str
    caption: str


def estimate_tokens(text: str) -> int:
    """Tokens a BPE or sentencepiece tokenizer makes of English text, estimated (long words split in pieces)."""
    return sum(1 + len(token) // 10 for token in _TOKEN.findall(text))


def _words(caption: str, trigger_word: str) -> list[str]:
    text = substitute_trigger(caption, trigger_word).lower()
    return [w for w in re.findall(r"\w+", text) if w != trigger_word.lower()]


def _per_caption(image: CaptionedImage, trigger_word: str, language: str) -> list[CaptionFinding]:
    caption = image.caption.strip()
    if not caption:
        return [CaptionFinding(image_id=image.image_id, kind="empty", severity="error", message="no caption")]
    if is_blank_caption(caption, trigger_word):
        return [
            CaptionFinding(
                image_id=image.image_id,
                kind="placeholder",
                severity="warning",
                message="a placeholder: it names the character and nothing else, so the LoRA learns the whole photo "
                "(pose, clothes, place) as the character; describe what varies, or auto-caption it (placeholders "
                "count as empty)",
            )
        ]
    findings = []
    if not mentions_trigger(caption, trigger_word):
        findings.append(
            CaptionFinding(
                image_id=image.image_id,
                kind="missing_trigger",
                severity="error",
                message=f"the trigger word ('{trigger_word}' or [trigger]) is missing: the LoRA cannot tie the "
                "subject to it",
                fixed_caption=prepend_trigger(caption),
            )
        )
    terms = find_identity_terms(caption, language)
    if terms:
        traits = sorted({trait for trait, *_ in terms})
        findings.append(
            CaptionFinding(
                image_id=image.image_id,
                kind="identity",
                severity="warning",
                message=f"describes the character's {', '.join(traits)}: the LoRA learns these as changeable "
                "instead of as part of the character",
                words=[words for _trait, words, *_ in terms],
                fixed_caption=remove_identity_terms(caption, language),
            )
        )
    tokens = estimate_tokens(substitute_trigger(caption, trigger_word))
    if tokens > T5_MAX_TOKENS - 1:  # one token goes to the end-of-sequence mark
        budget = max(1, int(len(caption.split()) * (T5_MAX_TOKENS - 1) / tokens) - 1)
        findings.append(
            CaptionFinding(
                image_id=image.image_id,
                kind="too_long_t5",
                severity="error",
                message=f"about {tokens} tokens: T5 reads only {T5_MAX_TOKENS}, the rest is cut off",
                fixed_caption=limit_words(caption, budget),
            )
        )
    elif tokens > CLIP_MAX_TOKENS - 2:  # CLIP's start and end marks take two
        findings.append(
            CaptionFinding(
                image_id=image.image_id,
                kind="too_long_clip",
                severity="info",
                message=f"about {tokens} tokens: CLIP reads only the first {CLIP_MAX_TOKENS} (T5 reads it all)",
            )
        )
    return findings


def _near_identical_groups(images: Sequence[CaptionedImage], trigger_word: str) -> list[list[int]]:
    words = [_words(image.caption, trigger_word) for image in images]
    sets = [set(w) for w in words]
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    comparable = [i for i, w in enumerate(words) if len(w) >= MIN_WORDS_TO_COMPARE]
    for position, i in enumerate(comparable):
        for j in comparable[position + 1 :]:
            # The set overlap is a cheap bound: sequences this similar share most of their words.
            overlap = len(sets[i] & sets[j]) / max(1, len(sets[i] | sets[j]))
            if overlap < NEAR_IDENTICAL_RATIO - 0.2:
                continue
            if SequenceMatcher(None, words[i], words[j], autojunk=False).ratio() >= NEAR_IDENTICAL_RATIO:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in comparable:
        groups.setdefault(root(i), []).append(i)
    return [group for group in groups.values() if len(group) > 1]


def lint_captions(
    images: Sequence[CaptionedImage], trigger_word: str, language: str = DEFAULT_LANGUAGE
) -> list[CaptionFinding]:
    """Every finding over a dataset's captions, image by image in the order given."""
    by_image: dict[str, list[CaptionFinding]] = {image.image_id: [] for image in images}
    for image in images:
        by_image[image.image_id] += _per_caption(image, trigger_word, language)
    for group in _near_identical_groups(images, trigger_word):
        ids = [images[i].image_id for i in group]
        for i in group:
            shared = sorted(set.intersection(*(set(_words(images[k].caption, trigger_word)) for k in group)))
            by_image[images[i].image_id].append(
                CaptionFinding(
                    image_id=images[i].image_id,
                    kind="near_identical",
                    severity="warning",
                    message=f"nearly the same caption as {len(group) - 1} other image(s): the LoRA binds to the "
                    "shared words; describe what differs in each photo",
                    words=shared[:20],
                    other_image_ids=[other for other in ids if other != images[i].image_id],
                )
            )
    return [finding for image in images for finding in by_image[image.image_id]]
