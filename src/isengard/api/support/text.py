"""Text a client sends, checked to what both databases can store, in one place every schema uses.

PostgreSQL refuses the NUL character in any text value and enforces `VARCHAR(n)`; SQLite stores both silently.
So every free-text field is (1) refused with a 422 that names NUL when it holds one, and (2) bounded by the
column it is stored in: the length is read from the model's column (`column_max_length(Character.trigger_word)`),
so a column and its schema cannot drift apart. Text columns without a length get an explicit bound here.

Usage in a schema: the bound first, `NoNul` last (constraints placed after a validator would lose their meaning,
e.g. `min_length` after stripping):

    TriggerWord = Annotated[str, StringConstraints(max_length=column_max_length(Lora.trigger_word)), NoNul]
    Prompt = Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS), NoNul]
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, model_validator
from sqlalchemy import String
from sqlalchemy.orm import InstrumentedAttribute

NUL_MESSAGE = "must not contain the NUL character (\\u0000): the database cannot store it"


def refuse_nul(value: str) -> str:
    """A pydantic validator (and a plain check for services): raises ValueError when `value` holds NUL."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


# The check as annotation metadata: the last item of any text type whose value the database will store.
NoNul = AfterValidator(refuse_nul)


def column_max_length(column: InstrumentedAttribute[Any]) -> int:
    """The character length of a `String(n)` column: the one source of truth for its schemas' max_length."""
    column_type = column.property.columns[0].type
    if not isinstance(column_type, String) or column_type.length is None:
        raise TypeError(f"{column} has no length: bound it with an explicit max_length")
    return int(column_type.length)


def fits_column(value: str, column: InstrumentedAttribute[Any]) -> bool:
    """Whether a value from elsewhere (a file's metadata, a derived name) can be stored in `column` as it is."""
    return "\x00" not in value and len(value) <= column_max_length(column)


def nul_location(value: Any, where: str = "") -> str | None:
    """Where in a decoded JSON value (keys included) a NUL character is, as a dotted path; None when nowhere."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and "\x00" in key:
                return path
            found = nul_location(item, path)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_location(item, f"{where}.{index}" if where else str(index))
            if found is not None:
                return found
    return None


class RequestModel(BaseModel):
    """The base of every request body: NUL is refused anywhere in it, free-form `config` dicts included (they end
    up in JSON columns and in prompts). Fields still carry their own length bounds."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul_anywhere(cls, data: Any) -> Any:
        where = nul_location(data)
        if where is not None:
            raise ValueError(f"{where or 'the body'} {NUL_MESSAGE}")
        return data


def clean_name(value: str) -> str:
    """A name as people see it, one way only: NFC (composed and decomposed accents are the same name), without
    invisible format characters (zero-width spaces and joiners, bidi overrides, BOM: they make two different names
    look identical, or one look like another), and with no control characters at all (line breaks, tabs, ESC)."""
    if not isinstance(value, str):
        return value
    normalized = unicodedata.normalize("NFC", value)
    controls = sorted({f"U+{ord(ch):04X}" for ch in normalized if unicodedata.category(ch) == "Cc"})
    if controls:
        raise ValueError(f"must not contain control characters ({', '.join(controls[:5])})")
    return "".join(ch for ch in normalized if unicodedata.category(ch) != "Cf")


# Put first in a name's Annotated type: the length and emptiness checks then see the cleaned name.
CleanName = BeforeValidator(clean_name)
