"""Captions: the `[trigger]` placeholder and caption text read from uploaded .txt files.

Captions are stored with `[trigger]` as written; the trainer substitutes the character's trigger word when it
builds the dataset, so renaming the trigger word never means rewriting every caption.
"""

from __future__ import annotations

import re

TRIGGER_PLACEHOLDER = "[trigger]"
MAX_CAPTION_CHARS = 4000

_PLACEHOLDER = re.compile(r"\[trigger\]", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")


def substitute_trigger(caption: str, trigger_word: str) -> str:
    """Replace every `[trigger]` (any letter case) with the trigger word."""
    # A function as replacement: a trigger word with backslashes must not be read as a regex template.
    return _PLACEHOLDER.sub(lambda _match: trigger_word, caption)


def mentions_trigger(caption: str, trigger_word: str) -> bool:
    """Whether the caption already names the subject, by placeholder or by the word itself."""
    if _PLACEHOLDER.search(caption):
        return True
    if not trigger_word:
        return False
    return re.search(rf"(?<!\w){re.escape(trigger_word)}(?!\w)", caption, re.IGNORECASE) is not None


def apply_trigger(prompt: str, trigger_word: str) -> str:
    """The one rule for prompts: `[trigger]` becomes the trigger word; a prompt that names neither gets it prepended.

    A prompt that already contains the word itself is left alone, so the word is never added twice.
    """
    word = trigger_word.strip()
    if _PLACEHOLDER.search(prompt):
        return _SPACES.sub(" ", substitute_trigger(prompt, word)).strip(" ,")
    if not word or mentions_trigger(prompt, word):
        return prompt
    return f"{word}, {prompt}" if prompt.strip() else word


def prepend_trigger(caption: str) -> str:
    """`[trigger], <caption>`; a caption that is empty becomes just the placeholder."""
    stripped = caption.strip()
    return f"{TRIGGER_PLACEHOLDER}, {stripped}" if stripped else TRIGGER_PLACEHOLDER


def tidy_caption(text: str) -> str:
    """A caption without surrounding blank space, empty lines or runs of spaces; its length is left to the caller
    (an edit that ends up too long is refused, not cut)."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line)


def normalize_caption(text: str) -> str:
    """One caption as a trainer expects it: tidied and bounded (caption files are cut at the limit)."""
    return tidy_caption(text)[:MAX_CAPTION_CHARS]


def caption_from_bytes(data: bytes) -> str:
    """Caption files are UTF-8 (a BOM is tolerated); undecodable bytes are replaced, never fatal."""
    return normalize_caption(data.decode("utf-8-sig", errors="replace"))


# The words of a caption that says only "this is a photo of the subject" (the CLI's and the bulk tool's default).
_PLACEHOLDER_WORDS = frozenset({"a", "an", "the", "photo", "photograph", "picture", "image", "pic", "of"})


def is_blank_caption(caption: str, trigger_word: str) -> bool:
    """Empty, or a placeholder that names the subject and nothing else ("a photo of [trigger]", "[trigger]"):
    it teaches nothing about the photo, so it counts as empty where captions are chosen to be written."""
    text = substitute_trigger(caption, " ")
    if trigger_word:
        text = re.sub(rf"(?<!\w){re.escape(trigger_word)}(?!\w)", " ", text, flags=re.IGNORECASE)
    return all(word in _PLACEHOLDER_WORDS for word in re.findall(r"\w+", text.lower()))
