// The trigger word a character will get, previewed as the user types: the rule of the API's `trigger_slug`
// (services/dataset/characters.py), with the same transliteration (any-ascii, the JavaScript build of the anyascii
// the server uses) so names in any script preview what the server will store. The server stays the judge.
// triggerCases.json holds names with the server's answers; a Vitest and a pytest both check them.
import anyAscii from "any-ascii";

/** The typed trigger word, else a slug of the transliterated name; "" when that has no letters a-z. */
export function triggerPreview(name: string, typed: string): string {
  if (typed.trim()) return typed.trim();
  const ascii = anyAscii(name.normalize("NFC"));
  const slug = ascii.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 100);
  return /[a-z]/.test(slug) ? slug : "";
}
