import { describe, expect, it } from "vitest";
import { describeSwitch, switchBase } from "./baseDefaults";

const DEFAULTS = { base: "flux1-dev", steps: 2000, sample_steps: 28, sample_guidance: 3.5, resolutions: [512, 768, 1024], rank: 16 };
const KLEIN = { sample_steps: 50, sample_guidance: 4, resolutions: [512, 768, 1024], guidance_scale: 1 };

describe("switching the base of a run", () => {
  it("applies the new base's settings to the fields the person has not edited, and keeps the edited ones", () => {
    const edited = { ...DEFAULTS, sample_steps: 12, rank: 8 };
    const result = switchBase(edited, DEFAULTS, "flux2-klein-4b", KLEIN);
    expect(result.values).toEqual({ ...edited, base: "flux2-klein-4b", sample_guidance: 4 });
    expect(result.changed).toEqual([{ key: "sample_guidance", from: 3.5, to: 4 }]);
    expect(result.kept).toEqual(["sample_steps"]);
    // guidance_scale is not a field of this form: nothing is added.
    expect("guidance_scale" in result.values).toBe(false);
    expect(describeSwitch("FLUX.2 [klein] 4B", result)).toBe(
      "FLUX.2 [klein] 4B's recommended settings applied: sample guidance 3.5 → 4. Kept your sample steps.",
    );
  });

  it("switching back restores the first base's settings where the person left them", () => {
    const toKlein = switchBase(DEFAULTS, DEFAULTS, "flux2-klein-4b", KLEIN);
    expect(toKlein.values.sample_steps).toBe(50);
    const back = switchBase({ ...toKlein.values, steps: 300 }, toKlein.baseline, "flux1-dev", { sample_steps: 28, sample_guidance: 3.5 });
    expect(back.values).toEqual({ ...DEFAULTS, steps: 300 });
    expect(back.changed.map((c) => c.key)).toEqual(["sample_steps", "sample_guidance"]);
    expect(back.kept).toEqual([]);
  });

  it("drops the old base's LoRA targets and says nothing when nothing changes", () => {
    const result = switchBase({ ...DEFAULTS, target_modules: ["to_q"] }, DEFAULTS, "flux1-krea-dev", { sample_steps: 28 });
    expect("target_modules" in result.values).toBe(false);
    expect(describeSwitch("FLUX.1 Krea [dev]", result)).toBe("");
  });
});
