import type { QualityFlag } from "./api";

/** What the quality check's flags are called on the page. */
export const FLAG_LABELS: Record<QualityFlag, string> = {
  small: "Too small",
  blurry: "Blurry",
  extreme_aspect: "Extreme aspect",
  near_duplicate: "Near duplicate",
  missing_caption: "No caption",
};

export function isQualityFlag(value: string | null): value is QualityFlag {
  return value !== null && Object.hasOwn(FLAG_LABELS, value);
}
