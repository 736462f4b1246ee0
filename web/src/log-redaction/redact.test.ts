import { describe, expect, it } from "vitest";
import { EMAIL_REDACTED, REDACTED, redactText, redactUrl, redactValue } from "./redact";

describe("redactText", () => {
  it.each([
    ["Authorization: Bearer abcdefghijklmnop123", "abcdefghijklmnop123"],
    ["jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_part-xyz here", "eyJhbGciOiJIUzI1NiJ9"],
    ["key sk-abcdefghijklmnopqrstuvwx leaked", "sk-abcdefghijklmnopqrstuvwx"],
    ['{"password": "hunter2", "name": "ok"}', "hunter2"],
    ["password=hunter2&user=bob", "hunter2"],
    ["api_key: 12345secret", "12345secret"],
    ["http://alice:s3cret@example.com/x", "s3cret"],
    ["mail bob.smith+x@example.co.uk now", "bob.smith+x@example.co.uk"],
  ])("removes the secret from %s", (raw, secret) => {
    const out = redactText(raw);
    expect(out).not.toContain(secret);
    expect(out.includes(REDACTED) || out.includes(EMAIL_REDACTED)).toBe(true);
  });

  it("keeps harmless text as it is", () => {
    const text = "TypeError: cannot read properties of undefined (reading 'step') at LossChart.tsx:42";
    expect(redactText(text)).toBe(text);
  });

  it("agrees with the server on URLs: every query value goes, keys, path and hash stay", () => {
    expect(redactUrl("http://127.0.0.1:8000/dataset?character=abc&flag=blurry#grid")).toBe(
      `http://127.0.0.1:8000/dataset?character=${REDACTED}&flag=${REDACTED}#grid`,
    );
    expect(redactText("at fetch (http://h/a?key=v)")).toBe(`at fetch (http://h/a?key=${REDACTED})`);
  });

  it("is stable when applied twice", () => {
    const once = redactText("GET /x?token=abc password=p mail a@b.io");
    expect(redactText(once)).toBe(once);
  });
});

describe("redactValue", () => {
  it("drops values under sensitive keys and scrubs nested strings", () => {
    const out = redactValue({
      headers: { Authorization: "Bearer qwertyuiopasdfgh", accept: "json" },
      user: ["someone@example.org", 3, null],
      sessionToken: "opaque",
    });
    expect(out).toEqual({
      headers: { Authorization: REDACTED, accept: "json" },
      user: [EMAIL_REDACTED, 3, null],
      sessionToken: REDACTED,
    });
  });
});
