"""The words that describe who a character is, per caption language: what a character caption should leave out.

A character LoRA learns what its captions do not say: the trigger word comes to stand for everything the captions
leave unnamed. So a caption that says "blonde hair, blue eyes" teaches the LoRA that hair colour and eye colour are
not part of the character (they are in the caption, changeable like the background) and the LoRA then fails to keep
them. The linter flags these words and the captioner's "leave identity out" removes them.

Each language lists *terms*: a term is a word or phrase, matched whole (case-insensitive), where `{colour}` stands
for any of the language's colour words and a trailing `{subject}` means "only when a subject noun follows" (the noun
itself is not part of the match, so removing "tall" from "a tall woman" keeps "a woman"). Words that are identity
only next to a noun ("red" hair, not a red coat; a "short" woman, not a short skirt) are written as phrases, so
clothing and background stay untouched.

Some single words are identity only when they are about the person: "old" in "an old man" or "[trigger] looks
old", not in "an old street"; "blonde" in "a blonde woman", not in "a blonde wig". These *modifiers* are judged by
the word they modify: when the next word (past colours and other modifiers) is a noun that is not the subject, the
word describes that thing and is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class IdentityVocabulary:
    """The identity terms of one language, grouped by trait (hair, eyes, skin, face, age, ethnicity, body)."""

    colours: tuple[str, ...]
    traits: dict[str, tuple[str, ...]]
    # Nouns that name the subject: "replace the subject noun" puts the trigger word in their place.
    subject_nouns: tuple[str, ...]
    articles: tuple[str, ...]
    # Words left dangling once an identity phrase is cut out ("a woman with [blue eyes]").
    connectives: tuple[str, ...]
    # Adjectives that are identity only about the person (see the module's docstring); empty: always identity.
    modifiers: tuple[str, ...] = ()
    # Words after a modifier that do not make it describe something else ("old and tired", "young at heart").
    function_words: tuple[str, ...] = ()


_EN_COLOURS = (
    "blonde", "blond", "brown", "black", "red", "ginger", "auburn", "brunette", "dark", "light", "grey", "gray",
    "white", "silver", "golden", "platinum", "strawberry blonde", "dirty blonde", "chestnut", "copper", "jet black",
    "blue", "green", "hazel", "amber", "pale", "fair", "olive", "tan", "tanned", "dark brown", "light brown",
)  # fmt: skip

ENGLISH = IdentityVocabulary(
    colours=_EN_COLOURS,
    traits={
        "hair": (
            "{colour} hair", "{colour}-haired", "{colour} haired", "blonde", "blond", "brunette", "redhead",
            "{colour} curly hair", "{colour} long hair", "{colour} short hair", "long {colour} hair",
            "short {colour} hair", "curly {colour} hair", "wavy {colour} hair", "straight {colour} hair",
            "{colour} beard", "{colour} eyebrows", "bald",
        ),
        "eyes": ("{colour} eyes", "{colour}-eyed", "{colour} eyed", "heterochromia"),
        "skin": (
            "{colour} skin", "{colour}-skinned", "{colour} skinned", "{colour} complexion", "freckles", "freckled",
            "skin tone", "complexion",
        ),
        "face": (
            "round face", "oval face", "square face", "heart-shaped face", "angular face", "chiselled jaw",
            "chiseled jaw", "strong jawline", "sharp jawline", "high cheekbones", "full lips", "thin lips",
            "button nose", "hooked nose", "dimples", "mole", "birthmark",
        ),
        "age": (
            "young", "younger", "old", "older", "elderly", "aged", "middle-aged", "middle aged", "teenage", "teenager",
            "teen", "adolescent", "youthful", "mature", "senior", "year-old", "year old", "in her twenties",
            "in his twenties", "in her thirties", "in his thirties", "in her forties", "in his forties",
            "old {subject}",
        ),
        "ethnicity": (
            "asian", "east asian", "south asian", "caucasian", "white {subject}", "black {subject}", "african",
            "african american",
            "hispanic", "latina", "latino", "latinx", "european", "middle eastern", "arab", "indian", "native american",
            "mixed-race", "mixed race", "ethnicity",
        ),
        "body": (
            "slim", "slender", "skinny", "thin {subject}", "petite", "curvy", "plus-size", "plus size", "chubby",
            "overweight", "muscular", "athletic build", "athletic {subject}", "stocky", "tall {subject}",
            "short {subject}", "busty", "voluptuous", "lanky", "heavyset", "body type", "{colour} build",
        ),
    },
    subject_nouns=(
        "woman", "man", "person", "girl", "boy", "lady", "gentleman", "guy", "female", "male", "individual",
        "figure", "child", "kid", "adult",
    ),
    articles=("a", "an", "the", "one"),
    connectives=("with", "and", "has", "having", "her", "his", "their", "of"),
    modifiers=(
        "young", "younger", "old", "older", "elderly", "aged", "teenage", "youthful", "mature", "senior", "slim",
        "slender", "skinny", "petite", "curvy", "chubby", "overweight", "muscular", "stocky", "lanky", "heavyset",
        "blonde", "blond", "brunette", "bald",
    ),
    function_words=(
        "a", "an", "the", "and", "or", "but", "nor", "with", "in", "on", "at", "by", "for", "to", "from", "of", "as",
        "than", "while", "who", "that", "is", "are", "was", "looking", "yet", "so", "very", "too", "enough",
    ),
)  # fmt: skip

_FR_COLOURS = (
    "blonds", "blonde", "blond", "bruns", "brune", "brun", "noirs", "noire", "noir", "roux", "rousse", "châtains",
    "châtain", "gris", "blancs", "bleus", "bleu", "verts", "vert", "marron", "noisette", "clairs", "clair", "foncés",
    "foncé", "pâle", "mate", "bronzée", "bronzé",
)  # fmt: skip

FRENCH = IdentityVocabulary(
    colours=_FR_COLOURS,
    traits={
        "hair": ("cheveux {colour}", "blonde", "blond", "brune", "rousse", "roux", "chauve", "barbe {colour}"),
        "eyes": ("yeux {colour}",),
        "skin": ("peau {colour}", "teint {colour}", "taches de rousseur", "teint"),
        "face": ("visage rond", "visage ovale", "pommettes hautes", "lèvres pulpeuses", "fossettes", "grain de beauté"),
        "age": ("jeune", "âgée", "âgé", "vieille", "vieux", "adolescente", "adolescent", "d'âge mûr"),
        "ethnicity": ("asiatique", "caucasienne", "caucasien", "africaine", "africain", "hispanique", "métisse"),
        "body": ("mince", "svelte", "maigre", "pulpeuse", "ronde", "musclée", "musclé", "grande", "grand", "petite"),
    },
    subject_nouns=("femme", "homme", "personne", "fille", "garçon", "dame", "enfant"),
    articles=("une", "un", "la", "le", "l'"),
    connectives=("avec", "et", "aux", "à", "au", "de", "ses", "sa", "son"),
)  # fmt: skip

_DE_COLOURS = (
    "blonden", "blonde", "blondes", "blond", "braunen", "braune", "braun", "schwarzen", "schwarze", "schwarz",
    "roten", "rote", "rot", "grauen", "graue", "grau", "blauen", "blaue", "blau", "grünen", "grüne", "grün",
    "hellen", "helle", "hell", "dunklen", "dunkle", "dunkel", "blasse", "blass",
)  # fmt: skip

GERMAN = IdentityVocabulary(
    colours=_DE_COLOURS,
    traits={
        "hair": ("{colour} haare", "{colour} haaren", "blondine", "rothaarige", "rothaarig", "glatze", "{colour} bart"),
        "eyes": ("{colour} augen", "{colour} augen"),
        "skin": ("{colour} haut", "sommersprossen", "hautfarbe", "teint"),
        "face": ("rundes gesicht", "ovales gesicht", "hohe wangenknochen", "volle lippen", "grübchen", "muttermal"),
        "age": ("junge", "jungen", "junger", "alte", "alter", "ältere", "älterer", "jugendliche", "jugendlicher"),
        "ethnicity": ("asiatische", "asiatischer", "kaukasische", "afrikanische", "hispanische"),
        "body": (
            "schlanke", "schlanker", "dünne", "kurvige", "muskulöse", "muskulöser", "große", "großer", "zierliche",
        ),
    },
    subject_nouns=("frau", "mann", "person", "mädchen", "junge", "dame", "kind"),
    articles=("eine", "ein", "die", "der", "das"),
    connectives=("mit", "und", "hat", "ihre", "seine", "ihren", "seinen"),
)  # fmt: skip

VOCABULARIES: dict[str, IdentityVocabulary] = {"en": ENGLISH, "fr": FRENCH, "de": GERMAN}


def vocabulary(language: str) -> IdentityVocabulary:
    """The vocabulary of a language code ("en", "fr", "de"); unknown codes fall back to English."""
    return VOCABULARIES.get(language.lower(), VOCABULARIES[DEFAULT_LANGUAGE])


def _words(phrase: str) -> str:
    """A literal phrase whose spaces also match hyphens and runs of spaces ("middle aged" = "middle-aged")."""
    return r"[\s-]+".join(re.escape(word) for word in phrase.split())


def _term_regex(term: str, vocab: IdentityVocabulary) -> str:
    colours = "(?:" + "|".join(_words(c) for c in sorted(vocab.colours, key=len, reverse=True)) + ")"
    subjects = "(?:" + "|".join(_words(n) for n in vocab.subject_nouns) + ")"
    follows_subject = term.endswith("{subject}")
    literal = term.removesuffix("{subject}").strip()
    parts = [colours if part == "{colour}" else _words(part) for part in re.split(r"(\{colour\})", literal) if part]
    regex = r"[\s-]*".join(p for p in (part.strip() for part in parts) if p)
    return regex + (rf"(?=[\s-]+{subjects}(?![\w-]))" if follows_subject else "")


@cache
def identity_pattern(language: str) -> re.Pattern[str]:
    """One regex over every identity term of the language, longest terms first so "blue eyes" wins over "blue".

    Each match's group name is its trait (hair, eyes, ...), so a finding can say which kind of trait it found.
    """
    vocab = vocabulary(language)
    alternatives: list[str] = []
    for trait, terms in vocab.traits.items():
        ordered = sorted(set(terms), key=lambda t: (-len(t.replace("{colour}", "x" * 12)), t))
        alternatives.append(f"(?P<{trait}>" + "|".join(_term_regex(term, vocab) for term in ordered) + ")")
    # At one position the first alternative that matches wins: traits listed first hold the longer phrases
    # ("blonde hair" before the age or body words), and within a trait the longest terms come first.
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.IGNORECASE)


_NEXT_TOKENS = re.compile(r"\[trigger\]|[\w'-]+|[^\w\s]", re.IGNORECASE)


def _describes_something_else(vocab: IdentityVocabulary, rest: str) -> bool:
    """Whether a modifier followed by `rest` describes a thing ("old street") rather than the person."""
    passable = {word.lower() for word in (*vocab.colours, *vocab.modifiers)}
    subject = {noun.lower() for noun in vocab.subject_nouns}
    for token in _NEXT_TOKENS.findall(rest):
        word = token.lower()
        if word in passable:
            continue  # "a young blonde woman": look past the other adjectives to the noun
        if word == "[trigger]" or not re.fullmatch(r"[\w'-]+", word) or word in subject:
            return False
        return word not in vocab.function_words
    return False


def find_identity_terms(caption: str, language: str = DEFAULT_LANGUAGE) -> list[tuple[str, str, int, int]]:
    """(trait, matched text, start, end) of each identity term in the caption, in order."""
    vocab = vocabulary(language)
    modifiers = {word.lower() for word in vocab.modifiers}
    found = []
    for match in identity_pattern(language).finditer(caption):
        if match.group(0).lower() in modifiers and _describes_something_else(vocab, caption[match.end() :]):
            continue
        trait = next(name for name, value in match.groupdict().items() if value is not None)
        found.append((trait, match.group(0), match.start(), match.end()))
    return found
