import { describe, expect, it } from "vitest";
import { aspectBox, cropShown, turn } from "./photoEdit";

const unedited = { width: 600, height: 400, edit: null };

describe("photo edit geometry", () => {
  it("turns an unedited photo without a crop", () => {
    expect(turn(unedited, true)).toEqual({ rotate: 90, crop: null });
    expect(turn(unedited, false)).toEqual({ rotate: 270, crop: null });
  });

  it("turns a crop with the photo, and back", () => {
    // 600x400 photo cropped to its left half; turned clockwise it is 400x600 and the crop is the top half.
    const cropped = { width: 300, height: 400, edit: { rotate: 0, crop: [0, 0, 300, 400], original_width: 600, original_height: 400 } };
    const clockwise = turn(cropped, true);
    expect(clockwise).toEqual({ rotate: 90, crop: [0, 0, 400, 300] });
    const back = turn({ width: 400, height: 300, edit: { ...cropped.edit, rotate: 90, crop: clockwise.crop ?? null } }, false);
    expect(back).toEqual({ rotate: 0, crop: [0, 0, 300, 400] });
  });

  it("crops what is shown, in the turned original's pixels", () => {
    const cropped = { width: 200, height: 300, edit: { rotate: 90, crop: [100, 50, 300, 350], original_width: 600, original_height: 400 } };
    expect(cropShown(cropped, [10, 20, 110, 220])).toEqual({ rotate: 90, crop: [110, 70, 210, 270] });
  });

  it("fits the largest centred box of a ratio", () => {
    expect(aspectBox(600, 400, 1)).toEqual([100, 0, 500, 400]);
    expect(aspectBox(600, 400, 3 / 4)).toEqual([150, 0, 450, 400]);
    expect(aspectBox(400, 600, 16 / 9)).toEqual([0, 188, 400, 413]);
  });
});
