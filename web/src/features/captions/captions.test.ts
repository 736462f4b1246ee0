import { describe, expect, it } from "vitest";
import type { JobEvent } from "../../api/events";
import { findingsByImage, storedCaptionLanguage, type CaptionFinding } from "./api";
import { isFinal, reduceProgress, startProgress } from "./useCaptionJob";

const at = "2026-12-01T00:00:00Z";
const caption = (index: number, written = true): JobEvent => ({
  type: "caption", job_id: "j", at, image_id: `i${index}`, index, total: 3, caption: `c${index}`, written,
});
const status = (value: "running" | "cancelled", message: string | null = null): JobEvent => ({
  type: "status", attempt: null, job_id: "j", at, status: value, message,
});

describe("caption job progress", () => {
  it("counts each image once done, written or kept, until the final status", () => {
    let state = startProgress("j", 3);
    state = reduceProgress(state, status("running"));
    state = reduceProgress(state, caption(1));
    state = reduceProgress(state, { type: "progress", job_id: "j", at, step: 1, total: 3 } as JobEvent);
    state = reduceProgress(state, caption(2, false));
    expect(state).toMatchObject({ status: "running", done: 2, total: 3, written: 1, kept: 1 });
    expect(state.last?.image_id).toBe("i2");
    expect(isFinal(state.status)).toBe(false);
    state = reduceProgress(state, status("cancelled", "cancelled"));
    expect(isFinal(state.status)).toBe(true);
    expect(state.message).toBe("cancelled");
  });
});

describe("findings by image", () => {
  it("groups findings under their image in the linter's order", () => {
    const f = (image_id: string, kind: CaptionFinding["kind"]): CaptionFinding => ({
      image_id, kind, severity: "warning", message: kind, words: [], fixed_caption: null, other_image_ids: [],
    });
    const grouped = findingsByImage([f("a", "missing_trigger"), f("b", "empty"), f("a", "identity")]);
    expect(grouped.get("a")?.map((x) => x.kind)).toEqual(["missing_trigger", "identity"]);
    expect(grouped.get("b")?.map((x) => x.kind)).toEqual(["empty"]);
    expect(grouped.get("c")).toBeUndefined();
  });
});

describe("a character's caption language", () => {
  it("is English until chosen, kept per character, and never a language the app does not offer", () => {
    window.localStorage.clear();
    expect(storedCaptionLanguage("c1")).toBe("en");
    window.localStorage.setItem("isengard.captionLanguage.c1", "fr");
    expect(storedCaptionLanguage("c1")).toBe("fr");
    expect(storedCaptionLanguage("c2")).toBe("en");
    window.localStorage.setItem("isengard.captionLanguage.c2", "tlh");
    expect(storedCaptionLanguage("c2")).toBe("en");
    window.localStorage.setItem("isengard.captionLanguage.c2", "toString");
    expect(storedCaptionLanguage("c2")).toBe("en");
  });
});
