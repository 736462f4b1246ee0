import { afterEach, describe, expect, it, vi } from "vitest";
import { buildEntry, logger } from "./logger";

describe("client logger", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("redacts before sending to /api/logs", async () => {
    window.history.replaceState(null, "", "/generate?prompt=secretprompt");
    const fetchMock = vi.fn(async () => new Response("{}", { status: 202 }));
    vi.stubGlobal("fetch", fetchMock);
    vi.spyOn(console, "warn").mockImplementation(() => {});
    logger.error("request failed for me@example.com", { token: "abc", status: 500 });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/logs");
    const body = JSON.parse(String(init.body));
    expect(body.message).toBe("request failed for [email]");
    expect(body.url).toBe("http://localhost:3000/generate?prompt=[redacted]");
    expect(body.context).toEqual({ token: "[redacted]", status: 500 });
  });

  it("reports the same message only once in a burst", () => {
    const fetchMock = vi.fn(async () => new Response("{}", { status: 202 }));
    vi.stubGlobal("fetch", fetchMock);
    vi.spyOn(console, "warn").mockImplementation(() => {});
    for (let i = 0; i < 5; i++) logger.error("polling failed");
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it("keeps entries within the server's bounds", () => {
    const entry = buildEntry("error", "x".repeat(10_000), { blob: "y".repeat(20_000) });
    expect(entry.message.length).toBeLessThanOrEqual(4000);
    expect(JSON.stringify(entry.context).length).toBeLessThan(8000);
  });
});
