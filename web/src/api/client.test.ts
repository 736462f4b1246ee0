import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, errorMessage } from "../lib/api-errors";
import { createApiClient, unwrap } from "./client";

// Requests need an absolute URL outside a browser page.
const api = createApiClient({ baseUrl: "http://isengard.test" });

function answer(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return vi.fn(async (_request: Request) => new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } }));
}

async function failure(call: Promise<unknown>): Promise<ApiError> {
  const error = await call.then(() => null, (e: unknown) => e);
  if (!(error instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(error)}`);
  return error;
}

describe("the typed client", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    window.localStorage.clear();
  });

  it("sends the typed body and parameters and returns the parsed answer", async () => {
    const fetchMock = answer({ items: [], total: 0, limit: 10, offset: 0 });
    vi.stubGlobal("fetch", fetchMock);
    const page = await unwrap(api.GET("/api/jobs", { params: { query: { kind: "training", status: null, limit: 10 } } }));
    expect(page.total).toBe(0);
    const sent = fetchMock.mock.calls[0][0];
    // Parameters left empty are not sent at all.
    expect(sent.url).toBe("http://isengard.test/api/jobs?kind=training&limit=10");
    expect(sent.headers.get("Accept")).toBe("application/json");

    const created = answer({ id: "c1" }, 201);
    vi.stubGlobal("fetch", created);
    await unwrap(api.POST("/api/characters", { body: { name: "Ada" } }));
    const post = created.mock.calls[0][0];
    expect(post.method).toBe("POST");
    expect(await post.text()).toBe('{"name":"Ada"}');
    expect(post.headers.get("Content-Type")).toBe("application/json");
  });

  it("fills path parameters", async () => {
    const fetchMock = answer({ id: "j 1" });
    vi.stubGlobal("fetch", fetchMock);
    await unwrap(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: "j 1" } } }));
    expect(fetchMock.mock.calls[0][0].url).toBe("http://isengard.test/api/jobs/j%201");
  });

  it("turns an error answer into an ApiError with the API's message and correlation id", async () => {
    vi.stubGlobal("fetch", answer({ detail: "name is taken" }, 409, { "x-correlation-id": "abc" }));
    const error = await failure(unwrap(api.POST("/api/characters", { body: { name: "a" } })));
    expect(error.status).toBe(409);
    expect(errorMessage(error)).toBe("name is taken");
    expect(error.correlationId).toBe("abc");
  });

  it("reads a validation list as field: message pairs", async () => {
    const detail = [{ loc: ["body", "name"], msg: "String should have at least 1 character", type: "string_too_short" }];
    vi.stubGlobal("fetch", answer({ detail }, 422));
    const error = await failure(unwrap(api.POST("/api/characters", { body: { name: "" } })));
    expect(error.message).toBe("name: String should have at least 1 character");
  });

  it("keeps the status of a 401 (the app then asks whether to show the sign-in page)", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("", { status: 401 })));
    const error = await failure(unwrap(api.GET("/api/characters")));
    expect(error.status).toBe(401);
    expect(error.message).toBe("You need to sign in (API token missing or wrong)");
  });

  it("uses a readable status text when the body says nothing", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("", { status: 503 })));
    const error = await failure(unwrap(api.GET("/api/health")));
    expect(errorMessage(error)).toBe("A service the server needs is down");
  });

  it("says the server is unreachable on a network failure, and lets an abort through", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    const error = await failure(unwrap(api.GET("/api/health")));
    expect(errorMessage(error)).toBe("Cannot reach the Isengard server. Is it running?");
    expect(error.status).toBe(0);

    vi.stubGlobal("fetch", vi.fn(async () => { throw new DOMException("stopped", "AbortError"); }));
    const aborted = await unwrap(api.GET("/api/health")).catch((e: unknown) => e);
    expect(aborted).toBeInstanceOf(DOMException);
  });

  it("sends the saved API token as a bearer token", async () => {
    window.localStorage.setItem("isengard.apiToken", "s3cret-token");
    const fetchMock = answer([]);
    vi.stubGlobal("fetch", fetchMock);
    await unwrap(api.GET("/api/characters"));
    expect(fetchMock.mock.calls[0][0].headers.get("Authorization")).toBe("Bearer s3cret-token");
  });

  it("returns nothing for a 204", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(null, { status: 204 })));
    await expect(unwrap(api.DELETE("/api/characters/{character_id}", { params: { path: { character_id: "c1" } } }))).resolves.toBeUndefined();
  });
});
