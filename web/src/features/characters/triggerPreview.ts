// The trigger word a character will get, previewed as the user types: the rule of the API's `trigger_slug`
// (services/dataset/characters.py). The server stays the judge; this only shows what it will do.

/** The typed trigger word, else a slug of the name; "" when the name has no letters a-z to make one from. */
export function triggerPreview(name: string, typed: string): string {
  if (typed.trim()) return typed.trim();
  const ascii = name.normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
  const slug = ascii.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 100);
  return /[a-z]/.test(slug) ? slug : "";
}
