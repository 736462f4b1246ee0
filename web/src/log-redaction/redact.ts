// Client-log redaction: what leaves the browser in a log is scrubbed of secrets first.
// The server redacts again (src/isengard/redaction.py); this side keeps secrets off the wire as well.

export const REDACTED = "[redacted]";
export const EMAIL_REDACTED = "[email]";

const SENSITIVE_WORDS = [
  "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key", "auth",
  "authorization", "cookie", "session", "credential", "private_key", "client_secret", "signature",
];

const keyWord = `[\\w-]*(?:${SENSITIVE_WORDS.map((w) => w.replace(/[-_]/g, (c) => `\\${c}`)).join("|")})[\\w-]*`;

const BEARER = /\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const KNOWN_TOKENS = /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\b(?:hf|ghp|gho|ghs|github_pat|xox[abpr])_[A-Za-z0-9_-]{16,}/g;
const JSON_PAIR = new RegExp(`(["']${keyWord}["']\\s*:\\s*)(["'])(?:\\\\.|(?!\\2).)*\\2`, "gi");
const KV_PAIR = new RegExp(`\\b(${keyWord})(\\s*[=:]\\s*)(?!\\[redacted\\])[^\\s&,;'"]+`, "gi");
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(?::[^/\s@]*)?@/gi;
const QUERY = /\?([^\s#"'<>)]*)/g;
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

function redactQuery(_match: string, query: string): string {
  const parts = query
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf("=");
      return eq >= 0 ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    });
  return `?${parts.join("&")}`;
}

/** Secrets, every URL query value and e-mail addresses replaced by placeholders. */
export function redactText(text: string): string {
  if (!text) return text;
  return text
    .replace(URL_USERINFO, (_m, scheme: string) => `${scheme}${REDACTED}@`)
    .replace(QUERY, redactQuery)
    .replace(BEARER, (_m, kind: string) => `${kind} ${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(KNOWN_TOKENS, REDACTED)
    .replace(JSON_PAIR, (_m, head: string, quote: string) => `${head}${quote}${REDACTED}${quote}`)
    .replace(KV_PAIR, (_m, key: string, sep: string) => `${key}${sep}${REDACTED}`)
    .replace(EMAIL, EMAIL_REDACTED);
}

/** A URL with its query values (and any user:password@) removed; the path stays for debugging. */
export function redactUrl(url: string): string {
  return redactText(url);
}

export function isSensitiveKey(key: string): boolean {
  const lowered = key.toLowerCase();
  return SENSITIVE_WORDS.some((word) => lowered.includes(word));
}

export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (typeof value === "string") return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      out[key] = isSensitiveKey(key) ? REDACTED : redactValue(inner, depth + 1);
    }
    return out;
  }
  return value;
}
