import { describe, expect, it } from "vitest";
import { errorMessage, messageFromBody } from "./api-errors";

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
