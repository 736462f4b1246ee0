// Switching a run's base: the new base's recommended settings replace those the person has not changed.

/** A setting a base switch changed, from what to what. */
export interface AppliedSetting {
  key: string;
  from: unknown;
  to: unknown;
}

export interface BaseSwitch {
  values: Record<string, unknown>;
  /** What the form itself set each field to (defaults and base settings): a value that differs was edited. */
  baseline: Record<string, unknown>;
  changed: AppliedSetting[];
  /** Fields the person edited that the new base would have set otherwise: left as they are. */
  kept: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The form's values on `base`: each of `recommended` (the new base's values, as the engine names its fields) is
 * applied to a field the person has not edited since the form set it (its value still equals `baseline`'s); edited
 * fields are kept. The LoRA's layers differ by base, so a chosen `target_modules` is dropped (the new base's own, the
 * server's default, apply).
 */
export function switchBase(
  values: Record<string, unknown>,
  baseline: Record<string, unknown>,
  base: string,
  recommended: Record<string, unknown>,
): BaseSwitch {
  const { target_modules: _targets, ...rest } = values;
  const next: Record<string, unknown> = { ...rest, base };
  const nextBaseline: Record<string, unknown> = { ...baseline, base };
  const changed: AppliedSetting[] = [];
  const kept: string[] = [];
  for (const [key, to] of Object.entries(recommended)) {
    if (!(key in values)) continue; // not a field of this engine's form
    const from = values[key];
    nextBaseline[key] = to;
    if (same(from, to)) continue;
    if (!same(from, baseline[key])) {
      kept.push(key);
      continue;
    }
    next[key] = to;
    changed.push({ key, from, to });
  }
  return { values: next, baseline: nextBaseline, changed, kept };
}

const shown = (value: unknown) => (Array.isArray(value) ? value.join(", ") : String(value));
const named = (key: string) => key.replace(/_/g, " ");

/** What a switch did, in a sentence or two ("" when it changed and kept nothing). */
export function describeSwitch(label: string, applied: Pick<BaseSwitch, "changed" | "kept">): string {
  const parts: string[] = [];
  if (applied.changed.length) {
    parts.push(`${label}'s recommended settings applied: ${applied.changed.map((c) => `${named(c.key)} ${shown(c.from)} → ${shown(c.to)}`).join("; ")}.`);
  }
  if (applied.kept.length) parts.push(`Kept your ${applied.kept.map(named).join(", ")}.`);
  return parts.join(" ");
}
