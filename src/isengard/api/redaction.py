"""Redaction of secrets and personal data from text that is about to be stored (client logs).

The web client redacts before it sends; the server redacts again because a client cannot be trusted to.

Secret shapes come from detect-secrets' regex plugins (AWS, Slack, Stripe, GitHub, GitLab, JWT, OpenAI, npm,
PyPI, SendGrid, Twilio, Discord, Telegram, Azure, IBM, Mailchimp, private keys, `user:pass@` URLs, …), used as a
library so that the set is maintained upstream. Its entropy and keyword plugins are left out (they flag ids and
hashes the logs need), and so is its public-IP plugin. The project keeps its own patterns only for what that set
lacks: bearer headers, Hugging Face `hf_…` and generic `sk-…` keys, Google `AIza…` keys, `redis://:password@`
(no user name), whole PEM private-key blocks (the plugin finds only the header line), values of sensitive keys
(`password=…`, `"token": "…"`), every URL query value, home directories, e-mail addresses and phone numbers.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

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
# Shapes detect-secrets has no plugin for.
_KNOWN_TOKENS = re.compile(
    r"\b(?:sk|rk)-[A-Za-z0-9_-]{16,}"  # sk-… keys without OpenAI's marker (Anthropic, older or proxied keys)
    r"|\b(?:hf|github_pat)_[A-Za-z0-9_-]{16,}"  # Hugging Face, GitHub fine-grained tokens
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
)
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL)
# Plugins that flag what is not a secret in a log line (ids, hashes, addresses).
_NOT_SECRET_SHAPES = frozenset({"IPPublicDetector"})
# A match is widened to the whole token it starts (a pattern may match only a key's known prefix or length).
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")
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
    out = _PEM_PRIVATE_KEY.sub(REDACTED, out)
    out = _redact_maintained_shapes(out)
    out = _KNOWN_TOKENS.sub(REDACTED, out)
    out = _JSON_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", out)
    out = _KV_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", out)
    out = _HOME.sub(lambda m: f"{m.group(1)}{REDACTED}", out)
    out = _EMAIL.sub(EMAIL_REDACTED, out)
    return _PHONE.sub(_redact_phone, out)


@cache
def _maintained_patterns() -> tuple[re.Pattern[str], ...]:
    """The regexes of detect-secrets' shape plugins (every regex-based plugin but those in _NOT_SECRET_SHAPES)."""
    patterns: list[re.Pattern[str]] = []
    plugins: list[type] = list(get_mapping_from_secret_type_to_class().values())
    for plugin in plugins:
        if issubclass(plugin, RegexBasedDetector) and plugin.__name__ not in _NOT_SECRET_SHAPES:
            patterns.extend(plugin().denylist)
    return tuple(patterns)


def _redact_maintained_shapes(text: str) -> str:
    spans: list[tuple[int, int]] = []
    for pattern in _maintained_patterns():
        for match in pattern.finditer(text):
            # A pattern with groups marks the secret part (the password of `user:pass@`), or only a prefix
            # (GitHub's `ghp`): either way the secret runs from the group's start to the end of its token.
            groups = [i for i in range(1, pattern.groups + 1) if match.start(i) >= 0] or [0]
            for group in groups:
                tail = _TOKEN_TAIL.match(text, match.end(group))
                spans.append((match.start(group), tail.end() if tail else match.end(group)))
    if not spans:
        return text
    out: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start < position:  # overlaps the previous secret: widen it
            position = max(position, end)
            continue
        out.append(text[position:start])
        out.append(REDACTED)
        position = end
    out.append(text[position:])
    return "".join(out)


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
