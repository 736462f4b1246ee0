import { afterEach, describe, expect, it, vi } from "vitest";
import { request } from "./api";
import { ApiError, errorMessage, messageFromBody } from "./api-errors";

describe("messageFromBody", () => {
  it("reads a string detail", () => {
    expect(messageFromBody({ detail: "character not found" })).toBe("character not found");
  });
  it("reads a validation list as field: message pairs", () => {
    const body = {
      detail: [
        { loc: ["body", "name"], msg: "String should have at least 1 character", type: "string_too_short" },
        { loc: ["query", "limit"], msg: "Input should be less than 200" },
      ],
    };
    expect(messageFromBody(body)).toBe("name: String should have at least 1 character; limit: Input should be less than 200");
  });
  it("falls back to message, then to nothing", () => {
    expect(messageFromBody({ message: "slow down" })).toBe("slow down");
    expect(messageFromBody({ detail: [] , message: "m" })).toBe("m");
    expect(messageFromBody({ other: 1 })).toBeNull();
    expect(messageFromBody(null)).toBeNull();
    expect(messageFromBody("plain text body")).toBe("plain text body");
  });
});

describe("request", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("turns an error response into an ApiError with the API's message", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ detail: "name is taken" }), { status: 409 })));
    const error = await request<never>("/api/characters", { method: "POST", body: { name: "a" } }).catch((e: unknown) => e as ApiError);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(409);
    expect(errorMessage(error)).toBe("name is taken");
  });

  it("uses a readable status text when the body says nothing", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("", { status: 503 })));
    const error = await request<never>("/api/health").catch((e: unknown) => e as ApiError);
    expect(errorMessage(error)).toBe("A service the server needs is down");
  });

  it("says the server is unreachable on a network failure", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    const error = await request<never>("/api/health").catch((e: unknown) => e as ApiError);
    expect(errorMessage(error)).toBe("Cannot reach the Isengard server. Is it running?");
    expect(error.status).toBe(0);
  });

  it("sends JSON and parses JSON", async () => {
    const fetchMock = vi.fn(async (_url: string, _init: RequestInit) => new Response(JSON.stringify({ id: "c1" }), { status: 201 }));
    vi.stubGlobal("fetch", fetchMock);
    const out = await request<{ id: string }>("/api/characters", { method: "POST", body: { name: "Ada" }, query: { x: 1, empty: "" } });
    expect(out).toEqual({ id: "c1" });
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe("/api/characters?x=1");
    expect(init.body).toBe('{"name":"Ada"}');
    expect((init.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
  });
});

describe("errorMessage", () => {
  it("handles anything thrown", () => {
    expect(errorMessage(new Error("boom"))).toBe("boom");
    expect(errorMessage("text")).toBe("text");
    expect(errorMessage(42)).toBe("Something went wrong");
  });
});
