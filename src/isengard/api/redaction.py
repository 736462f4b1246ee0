"""Redaction of secrets and personal data from text that is about to be stored (client logs).

The web client redacts before it sends; the server redacts again because a client cannot be trusted to. What is
removed: bearer tokens and well-known token shapes (JWTs, `sk-…`, `hf_…`, `ghp_…`), values of sensitive keys
(`password=…`, `"token": "…"`), credentials in URLs (`user:pass@`), every URL query value, and e-mail addresses.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
EMAIL_REDACTED = "[email]"

# Key names whose values are secrets wherever they appear (query strings, JSON, `key=value`, dict keys).
SENSITIVE_KEYS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "api-key",
    "auth",
    "authorization",
    "cookie",
    "session",
    "sessionid",
    "credential",
    "credentials",
    "private_key",
    "client_secret",
    "signature",
)

_KEY_ALTERNATION = "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS, key=len, reverse=True))
# A key that merely contains a sensitive word counts too (x_api_token, userPassword).
_KEY_WORD = rf"[\w-]*(?:{_KEY_ALTERNATION})[\w-]*"

_BEARER = re.compile(r"\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_KNOWN_TOKENS = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI-style keys
    r"|\b(?:hf|ghp|gho|ghs|github_pat|xox[abpr])_[A-Za-z0-9_-]{16,}"  # Hugging Face, GitHub, Slack
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens as Slack writes them (xoxb-…)
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe
    r"|\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"  # AWS access key ids
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
)
# A home directory names its user: /home/ada/…, /Users/ada/…, C:\Users\ada\…
_HOME = re.compile(r"(/home/|/Users/|[A-Za-z]:\\Users\\)[^/\\\s]+", re.IGNORECASE)
# Phone numbers: an international or grouped form of 8 or more digits (not ids, versions or timestamps).
_PHONE = re.compile(r"(?<![\w.-])\+?\(?\d{1,4}\)?(?:[ .-]\(?\d{2,4}\)?){2,5}(?![\w.-])")
PHONE_REDACTED = "[phone]"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# "password": "x"  /  'token': 'x'
_JSON_PAIR = re.compile(rf"""(["']{_KEY_WORD}["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2""", re.IGNORECASE)
# password=x  /  token: x   (stops at whitespace, &, comma, semicolon, quote)
_KV_PAIR = re.compile(rf"""\b({_KEY_WORD})(\s*[=:]\s*)(?!\[redacted\])[^\s&,;'"]+""", re.IGNORECASE)
# user:password@ and :password@ (Redis URLs have no user)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]*(?::[^/\s@]*)?@", re.IGNORECASE)
_QUERY = re.compile(r"\?([^\s#\"'<>)]*)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _redact_query(match: re.Match[str]) -> str:
    parts = []
    for pair in match.group(1).split("&"):
        if not pair:
            continue
        key, sep, _value = pair.partition("=")
        parts.append(f"{key}={REDACTED}" if sep else key)
    return "?" + "&".join(parts)


def redact_text(text: str) -> str:
    """Return `text` with secrets, query values and e-mail addresses replaced by placeholders."""
    if not text:
        return text
    out = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    out = _QUERY.sub(_redact_query, out)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", out)
    out = _JWT.sub(REDACTED, out)
    out = _KNOWN_TOKENS.sub(REDACTED, out)
    out = _JSON_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", out)
    out = _KV_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", out)
    out = _HOME.sub(lambda m: f"{m.group(1)}{REDACTED}", out)
    out = _EMAIL.sub(EMAIL_REDACTED, out)
    return _PHONE.sub(_redact_phone, out)


def _redact_phone(match: re.Match[str]) -> str:
    found = match.group(0)
    if sum(c.isdigit() for c in found) < 8 or _ISO_DATE.fullmatch(found):
        return found
    return PHONE_REDACTED


def is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SENSITIVE_KEYS)


def redact_value(value: Any, *, depth: int = 0) -> Any:
    """Redact a JSON-like value: strings are scrubbed, values under sensitive keys are dropped entirely."""
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            str(k): (REDACTED if is_sensitive_key(str(k)) else redact_value(v, depth=depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v, depth=depth + 1) for v in value]
    return value
