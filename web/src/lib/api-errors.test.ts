import { describe, expect, it } from "vitest";
import { ApiError, errorMessage, messageFromBody, validationItems } from "./api-errors";

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

describe("errorMessage", () => {
  it("handles anything thrown", () => {
    expect(errorMessage(new Error("boom"))).toBe("boom");
    expect(errorMessage("text")).toBe("text");
    expect(errorMessage(42)).toBe("Something went wrong");
  });
});

describe("validation items", () => {
  it("are the list items of a 422's detail, and nothing for any other error", () => {
    const body = { detail: [{ loc: ["body", "config", "rank"], msg: "too big" }, "a sentence", { loc: "not a list" }] };
    expect(validationItems(new ApiError("x", 422, body))).toEqual([{ loc: ["body", "config", "rank"], msg: "too big" }]);
    expect(validationItems(new ApiError("x", 422, { detail: "one sentence" }))).toEqual([]);
    expect(validationItems(new ApiError("x", 500, null))).toEqual([]);
    expect(validationItems(new Error("network"))).toEqual([]);
  });
});
