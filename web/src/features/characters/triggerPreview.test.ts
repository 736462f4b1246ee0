import { describe, expect, it } from "vitest";
import { triggerPreview } from "./triggerPreview";

describe("triggerPreview", () => {
  it("slugs the name as the API does", () => {
    expect(triggerPreview("  Zoë Kim-Park ", "")).toBe("zoe_kim_park");
    expect(triggerPreview("Ada 2", "")).toBe("ada_2");
  });
  it("prefers a typed trigger word", () => {
    expect(triggerPreview("Zoë", "  ohwx_zoe ")).toBe("ohwx_zoe");
  });
  it("gives nothing for a name without letters a-z", () => {
    expect(triggerPreview("李雷", "")).toBe("");
    expect(triggerPreview("123 !!", "")).toBe("");
  });
});
