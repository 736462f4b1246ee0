import { describe, expect, it } from "vitest";
import cases from "./triggerCases.json";
import { triggerPreview } from "./triggerPreview";

describe("triggerPreview", () => {
  it.each(cases)("previews what the server stores for $name", ({ name, trigger }) => {
    expect(triggerPreview(name, "")).toBe(trigger);
  });
  it("prefers a typed trigger word", () => {
    expect(triggerPreview("Zoë", "  ohwx_zoe ")).toBe("ohwx_zoe");
    expect(triggerPreview("李雷", " li ")).toBe("li");
  });
});
