import { describe, expect, it } from "vitest";
import { ApiError } from "../../lib/api-errors";
import { baseCandidates } from "./api";

describe("baseCandidates", () => {
  it("reads the bases an import asks to choose from", () => {
    const asked = new ApiError("x.safetensors: the file fits …", 422, { detail: "…", candidates: ["flux1-dev", "flux1-krea-dev"] });
    expect(baseCandidates(asked)).toEqual(["flux1-dev", "flux1-krea-dev"]);
  });

  it("finds none in another refusal", () => {
    expect(baseCandidates(new ApiError("bad file", 422, { detail: "bad file" }))).toEqual([]);
    expect(baseCandidates(new ApiError("bad", 422, { detail: "bad", candidates: null }))).toEqual([]);
    expect(baseCandidates(new ApiError("too large", 413, { detail: "too large", candidates: ["flux1-dev"] }))).toEqual([]);
    expect(baseCandidates(new Error("network"))).toEqual([]);
  });
});
