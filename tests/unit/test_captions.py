"""The `[trigger]` placeholder and caption text handling."""

from __future__ import annotations

from isengard.captions.trigger import (
    caption_from_bytes,
    mentions_trigger,
    normalize_caption,
    prepend_trigger,
    substitute_trigger,
)


def test_substitute_trigger_replaces_every_placeholder_in_any_case() -> None:
    assert substitute_trigger("[trigger] in a field, [TRIGGER] smiling", "ohwx") == "ohwx in a field, ohwx smiling"
    assert substitute_trigger("no placeholder here", "ohwx") == "no placeholder here"
    assert substitute_trigger("[trigger]", "") == ""


def test_substitute_trigger_treats_the_word_literally() -> None:
    assert substitute_trigger("photo of [trigger]", r"a\1b$0") == r"photo of a\1b$0"
    assert substitute_trigger("[trigger ] and [trigger", "x") == "[trigger ] and [trigger"


def test_mentions_trigger_by_placeholder_or_whole_word() -> None:
    assert mentions_trigger("a [Trigger] portrait", "ohwx")
    assert mentions_trigger("OHWX at the beach", "ohwx")
    assert not mentions_trigger("ohwxy at the beach", "ohwx")
    assert not mentions_trigger("a portrait", "")


def test_prepend_trigger() -> None:
    assert prepend_trigger("  smiling ") == "[trigger], smiling"
    assert prepend_trigger("") == "[trigger]"


def test_caption_text_is_normalized_and_bounded() -> None:
    assert normalize_caption("  a   b \r\n\r\n c\t\td  ") == "a b\nc d"
    assert len(normalize_caption("x" * 10_000)) == 4000
    assert caption_from_bytes("\ufeffcafé".encode()) == "café"
    assert caption_from_bytes(b"bad \xff byte") == "bad \ufffd byte"


def test_one_trigger_rule_for_prompts_placeholder_or_prepended_once() -> None:
    from isengard.captions.trigger import apply_trigger

    assert apply_trigger("[trigger] reading a book", "ohwx_ada") == "ohwx_ada reading a book"
    assert apply_trigger("a portrait of [TRIGGER], [trigger] smiling", "ohwx") == "a portrait of ohwx, ohwx smiling"
    assert apply_trigger("reading a book", "ohwx_ada") == "ohwx_ada, reading a book"
    assert apply_trigger("OHWX_ADA reading", "ohwx_ada") == "OHWX_ADA reading"  # already named: not twice
    assert apply_trigger("", "ohwx") == "ohwx"
    assert apply_trigger("[trigger] at sea", "") == "at sea"
