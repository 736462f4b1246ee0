"""Caption style for a character dataset: what the captioner is asked for, and the pass that shapes what it wrote.

A character caption names the subject by the trigger word and describes what should stay changeable (clothing,
pose, setting, light, framing). The style decides where `[trigger]` goes, how long a caption may be, a fixed prefix
or suffix, and whether identity traits are left out: then the instruction asks the model not to describe them and
`remove_identity_terms` cuts out any the model wrote anyway (the same words the linter flags).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from isengard.captions.identity_words import DEFAULT_LANGUAGE, find_identity_terms, vocabulary
from isengard.captions.trigger import TRIGGER_PLACEHOLDER, mentions_trigger, normalize_caption, prepend_trigger

LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German"}
CaptionLanguage = Literal["en", "fr", "de"]
TriggerPlacement = Literal["first", "replace_subject"]


class CaptionStyle(BaseModel):
    """How automatic captions are written for a character."""

    model_config = ConfigDict(extra="forbid")

    trigger_placement: TriggerPlacement = Field(
        default="first",
        description="'first': `[trigger], <caption>`; 'replace_subject': the first 'a woman' / 'the man' becomes "
        "`[trigger]` (first when the caption names no subject)",
    )
    max_words: int = Field(default=60, ge=5, le=300, description="captions are cut at a clause boundary past this")
    prefix: str = Field(default="", max_length=200, description="text put before every caption")
    suffix: str = Field(default="", max_length=200, description="text put after every caption")
    leave_identity_out: bool = Field(
        default=True,
        description="ask the model not to describe hair, eyes, skin, face, age, ethnicity or body, and remove such "
        "words from what it writes",
    )
    language: CaptionLanguage = "en"


def instruction(style: CaptionStyle) -> str:
    """The request put to the vision-language model with each image."""
    parts = [
        "Write a caption of this photo for training an image model, as one paragraph of plain prose without a "
        "preamble. Describe the clothing, the pose and expression, the setting and background, the lighting, and "
        "the framing and camera angle."
    ]
    if style.leave_identity_out:
        parts.append(
            "Call the subject only 'a woman', 'a man' or 'a person', and do not describe their hair, eye colour, "
            "skin, face shape, age, ethnicity or body."
        )
    parts.append(f"Use at most {style.max_words} words.")
    if style.language != "en":
        parts.append(f"Write the caption in {LANGUAGE_NAMES[style.language]}.")
    return " ".join(parts)


# --- The post-pass ------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")
_PREAMBLE = re.compile(r"^\s*(?:caption|description)\s*:\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def clean_model_output(text: str) -> str:
    """One line of text from a model's answer: no control characters, no "Caption:" preamble, no wrapping quotes."""
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    text = _PREAMBLE.sub("", text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def _tidy(text: str, language: str) -> str:
    """Mend what cutting words out leaves: dangling connectives, empty clauses, doubled commas, a/an."""
    vocab = vocabulary(language)
    connective = "|".join(re.escape(word) for word in vocab.connectives)
    text = _SPACES.sub(" ", text)
    for _ in range(3):  # each pass can expose another dangling word
        text = re.sub(rf"(?<![\w-])(?:{connective})(?:\s+(?:{connective}))+(?![\w-])", "", text, flags=re.IGNORECASE)
        text = re.sub(rf"(?<![\w-])(?:{connective})\s*(?=[,.;:]|$)", "", text, flags=re.IGNORECASE)
        text = re.sub(r"\s+([,.;:])", r"\1", text)
        text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
        text = _SPACES.sub(" ", text).strip()
    text = re.sub(r"^[\s,.;:]+|[\s,;:]+$", "", text)
    if language == "en":
        text = re.sub(
            r"\b(a|an|A|An)\s+(\w)",
            lambda m: (("an" if m.group(2).lower() in "aeiou" else "a") if m.group(1).islower() else
                       ("An" if m.group(2).lower() in "aeiou" else "A")) + " " + m.group(2),
            text,
        )  # fmt: skip
    return text


def remove_identity_terms(caption: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The caption without the identity terms the linter flags, and without the words their removal left dangling."""
    found = find_identity_terms(caption, language)
    if not found:
        return caption
    connectives = "|".join(re.escape(word) for word in vocabulary(language).connectives)
    # The words that only joined the term to the sentence go with it ("with [blue eyes]", "and her [red hair]").
    joined = re.compile(rf"(?:(?<![\w-])(?:{connectives})\s+)+$", re.IGNORECASE)
    text = caption
    for _trait, _words, start, end in reversed(found):
        before = joined.sub("", text[:start])
        text = before + " " + text[end:]
    return _tidy(text, language)


def place_trigger(caption: str, placement: TriggerPlacement, language: str = DEFAULT_LANGUAGE) -> str:
    """Put `[trigger]` where the style says, unless the caption already has it."""
    if mentions_trigger(caption, ""):
        return caption
    if placement == "replace_subject":
        vocab = vocabulary(language)
        articles = "|".join(re.escape(a) for a in vocab.articles)
        nouns = "|".join(re.escape(n) for n in vocab.subject_nouns)
        pattern = re.compile(rf"(?<![\w-])(?:(?:{articles})\s+)?(?:{nouns})(?![\w-])", re.IGNORECASE)
        replaced, count = pattern.subn(TRIGGER_PLACEHOLDER, caption, count=1)
        if count:
            return replaced
    return prepend_trigger(caption)


def limit_words(caption: str, max_words: int) -> str:
    """At most `max_words` words, cut at the last clause boundary when one keeps most of them."""
    words = caption.split()
    if len(words) <= max_words:
        return caption
    cut = " ".join(words[:max_words])
    boundary = max(cut.rfind(","), cut.rfind("."), cut.rfind(";"))
    if boundary > 0 and len(cut[:boundary].split()) >= max_words * 0.6:
        cut = cut[:boundary]
    return cut.rstrip(" ,;:")


def _with_affixes(caption: str, prefix: str, suffix: str) -> str:
    text = caption
    if prefix.strip():
        text = f"{prefix.strip()} {text}"
    if suffix.strip():
        # A suffix that starts with punctuation is attached as written; a plain one becomes its own clause.
        sep = "" if suffix.strip()[0] in ",.;:" else ", "
        text = f"{text}{sep}{suffix.strip()}"
    return text


def apply_style(raw: str, style: CaptionStyle) -> str:
    """The caption stored for an image from what the model wrote: cleaned, identity-free if asked, bounded, with
    `[trigger]` placed and the prefix and suffix added."""
    text = clean_model_output(raw)
    if style.leave_identity_out:
        text = remove_identity_terms(text, style.language)
    text = limit_words(text, style.max_words)
    text = place_trigger(text, style.trigger_placement, style.language)
    return normalize_caption(_with_affixes(text, style.prefix, style.suffix))
