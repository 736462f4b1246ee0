"""The caption linter on a crafted dataset whose faults are known, and the style pass the captioner applies."""

from __future__ import annotations

import pytest

from isengard.captions.identity_words import find_identity_terms
from isengard.captions.lint import (
    CLIP_MAX_TOKENS,
    T5_MAX_TOKENS,
    CaptionedImage,
    estimate_tokens,
    lint_captions,
)
from isengard.captions.style import CaptionStyle, apply_style, instruction, place_trigger, remove_identity_terms

TRIGGER = "adaxq"

LONG_CLIP = "[trigger], " + ", ".join(f"a detail number {n} of the scene" for n in range(14))
LONG_T5 = "[trigger], " + " ".join(["a red umbrella in the rain"] * 110)

DATASET = [
    CaptionedImage("good", "[trigger], wearing a green raincoat, standing on a bridge at dusk, wide shot"),
    CaptionedImage("no-trigger", "a woman sitting in a cafe, holding a cup, soft window light"),
    CaptionedImage("word-trigger", "adaxq laughing on a beach, side view, golden hour"),
    CaptionedImage("identity", "[trigger], a young blonde woman with blue eyes, wearing a black jacket, in a park"),
    CaptionedImage("empty", "   "),
    CaptionedImage("dup-1", "[trigger], wearing a white shirt, standing in front of a brick wall, studio lighting"),
    CaptionedImage("dup-2", "[trigger], wearing a white shirt, standing in front of a brick wall, studio light"),
    CaptionedImage("clip-long", LONG_CLIP),
    CaptionedImage("t5-long", LONG_T5),
]


def _by(findings: list, image_id: str) -> dict[str, object]:
    return {f.kind: f for f in findings if f.image_id == image_id}


def test_each_known_fault_is_found_on_its_image_and_nowhere_else() -> None:
    findings = lint_captions(DATASET, TRIGGER)
    assert _by(findings, "good") == {}
    assert _by(findings, "word-trigger") == {}  # the trigger word itself counts as present
    assert set(_by(findings, "no-trigger")) == {"missing_trigger"}
    assert set(_by(findings, "identity")) == {"identity"}
    assert set(_by(findings, "empty")) == {"empty"}
    assert set(_by(findings, "dup-1")) == {"near_identical"}
    assert set(_by(findings, "dup-2")) == {"near_identical"}
    assert set(_by(findings, "clip-long")) == {"too_long_clip"}
    assert "too_long_t5" in _by(findings, "t5-long")
    # Findings come image by image, in the dataset's order.
    order = [f.image_id for f in findings]
    assert order == sorted(order, key=[image.image_id for image in DATASET].index)


def test_findings_name_the_words_and_carry_a_fix_where_one_exists() -> None:
    findings = lint_captions(DATASET, TRIGGER)
    missing = _by(findings, "no-trigger")["missing_trigger"]
    assert missing.fixed_caption == "[trigger], a woman sitting in a cafe, holding a cup, soft window light"

    identity = _by(findings, "identity")["identity"]
    assert identity.words == ["young", "blonde", "blue eyes"]
    assert "age" in identity.message and "hair" in identity.message and "eyes" in identity.message
    assert identity.fixed_caption == "[trigger], a woman, wearing a black jacket, in a park"
    assert lint_captions([CaptionedImage("x", identity.fixed_caption)], TRIGGER) == []

    duplicate = _by(findings, "dup-1")["near_identical"]
    assert duplicate.other_image_ids == ["dup-2"]
    assert {"white", "shirt", "brick", "wall"} <= set(duplicate.words)
    assert duplicate.fixed_caption is None  # only a person can say what differs between the photos

    too_long = _by(findings, "t5-long")["too_long_t5"]
    assert too_long.fixed_caption is not None
    assert estimate_tokens(too_long.fixed_caption.replace("[trigger]", TRIGGER)) < T5_MAX_TOKENS
    assert too_long.fixed_caption.startswith("[trigger], a red umbrella")
    assert _by(findings, "empty")["empty"].fixed_caption is None


def test_token_estimates_sit_on_the_right_side_of_the_limits() -> None:
    assert estimate_tokens(LONG_CLIP) > CLIP_MAX_TOKENS
    assert estimate_tokens(DATASET[0].caption) < CLIP_MAX_TOKENS
    assert estimate_tokens("photo, portrait") == 3


def test_different_captions_that_share_a_few_words_are_not_near_identical() -> None:
    images = [
        CaptionedImage("a", "[trigger], wearing a white shirt, standing in a kitchen, morning light"),
        CaptionedImage("b", "[trigger], wearing a red dress, dancing on a stage, spotlight from above"),
        CaptionedImage("c", "[trigger]"),
        CaptionedImage("d", "[trigger]"),
    ]
    assert [f for f in lint_captions(images, TRIGGER) if f.kind == "near_identical"] == []


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("a black woman in a white dress", ["black"]),  # ethnicity next to the subject, not the dress's colour
        ("a man in a black jacket and a short skirt", []),
        ("a tall woman, middle-aged, with freckles and long brown hair",
         ["tall", "middle-aged", "freckles", "long brown hair"]),
        ("une jeune femme aux cheveux blonds", ["jeune", "cheveux blonds"]),
        ("eine Frau mit blonden Haaren und blauen Augen", ["blonden Haaren", "blauen Augen"]),
    ],
)  # fmt: skip
def test_identity_terms_per_language(caption: str, expected: list[str]) -> None:
    language = "fr" if "femme" in caption else "de" if "Frau" in caption else "en"
    assert [words for _trait, words, *_ in find_identity_terms(caption, language)] == expected


def test_removing_identity_terms_keeps_the_sentence_readable() -> None:
    assert remove_identity_terms("an elderly man with grey hair and blue eyes wearing a suit") == "a man wearing a suit"
    assert remove_identity_terms("a woman wearing a blue dress") == "a woman wearing a blue dress"


def test_style_pass_places_the_trigger_bounds_the_length_and_adds_the_affixes() -> None:
    raw = 'Caption: "A young woman with red hair wearing a yellow coat, walking a dog, in a snowy street, at night"'
    first = apply_style(raw, CaptionStyle())
    assert first == "[trigger], A woman wearing a yellow coat, walking a dog, in a snowy street, at night"
    replaced = apply_style(raw, CaptionStyle(trigger_placement="replace_subject", prefix="photo of", suffix="35mm"))
    assert replaced == "photo of [trigger] wearing a yellow coat, walking a dog, in a snowy street, at night, 35mm"
    short = apply_style(raw, CaptionStyle(max_words=8))
    assert short == "[trigger], A woman wearing a yellow coat"  # 8 words reach into the next clause: cut at the comma
    kept = apply_style(raw, CaptionStyle(leave_identity_out=False))
    assert "red hair" in kept and "young" in kept
    assert place_trigger("adaxq [trigger] on a boat", "first") == "adaxq [trigger] on a boat"
    assert place_trigger("a boat on a lake", "replace_subject") == "[trigger], a boat on a lake"


def test_the_instruction_asks_to_leave_identity_out_only_when_the_style_says_so() -> None:
    assert "do not describe their hair" in instruction(CaptionStyle())
    assert "hair" not in instruction(CaptionStyle(leave_identity_out=False))
    assert "at most 25 words" in instruction(CaptionStyle(max_words=25))
    assert "in French" in instruction(CaptionStyle(language="fr"))


def test_placeholder_captions_are_a_finding_and_count_as_blank() -> None:
    from isengard.captions.trigger import is_blank_caption

    same = [CaptionedImage(f"p{i}", "a photo of [trigger]") for i in range(5)]
    findings = lint_captions([*same, CaptionedImage("word", "Photo of adaxq."), *DATASET[:1]], TRIGGER)
    for image in [*same, CaptionedImage("word", "")]:
        assert set(_by(findings, image.image_id)) == {"placeholder"}, image
    assert _by(findings, "good") == {}
    for caption in ["a photo of [trigger]", "[trigger]", "A picture of adaxq", "  ", "an image of the [trigger]"]:
        assert is_blank_caption(caption, TRIGGER), caption
    for caption in ["a photo of [trigger] on a bridge", "[trigger], portrait by a window", "a photo of a cat"]:
        assert not is_blank_caption(caption, TRIGGER), caption


@pytest.mark.parametrize(
    ("caption", "flagged"),
    [
        ("[trigger] walking down an old street", []),
        ("[trigger] in front of an old brick building, wearing slim fit jeans and a blonde wig", []),
        ("[trigger], a young woman on an old street", ["young"]),
        ("[trigger], a young blonde woman", ["young", "blonde"]),
        ("an old man, [trigger], smiling", ["old"]),
        ("[trigger] looks old and tired", ["old"]),
        ("[trigger], young, smiling", ["young"]),
    ],
)
def test_identity_words_are_judged_in_context(caption: str, flagged: list[str]) -> None:
    words = [text for _trait, text, *_ in find_identity_terms(caption)]
    assert [w.lower() for w in words] == flagged
    if not flagged:
        assert remove_identity_terms(caption) == caption  # "Fix" leaves a caption with nothing to fix alone
    findings = lint_captions([CaptionedImage("one", caption)], TRIGGER)
    assert ("identity" in _by(findings, "one")) == bool(flagged)
