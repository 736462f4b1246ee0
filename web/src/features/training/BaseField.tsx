import { Field } from "../../components/ui";
import { formatBytes } from "../../lib/format";
import type { BaseModel } from "../system/api";

/** What the base's default run takes on the workers' GPUs (a CPU-only installation has nothing to say). */
function memoryFit(base: BaseModel): string | null {
  const fits = base.memory.filter((fit) => fit.gpu_total_bytes);
  if (!fits.length) return null;
  return fits
    .map((fit) => `${fit.worker_id} (${formatBytes(fit.gpu_total_bytes ?? 0)}): ${fit.chosen ? `fits with ${fit.chosen}` : "does not fit"}`)
    .join("; ");
}

/** The base model a LoRA is trained on: the bases installed here, with licence, memory fit and recommended settings;
 * one that is not installed says what is missing and how to get it. */
export function BaseField({ bases, value, onChange }: { bases: BaseModel[]; value: string; onChange: (name: string) => void }) {
  const chosen = bases.find((b) => b.name === value);
  const fit = chosen ? memoryFit(chosen) : null;
  const hint = chosen ? (
    <span data-testid="base-details">
      {chosen.licence}{chosen.commercial_use ? " (commercial use allowed)" : " (non-commercial)"}
      {" · recommended "}{chosen.defaults.sample_steps} sampling steps, guidance {chosen.defaults.guidance}, {chosen.defaults.resolution} px
      {fit ? ` · ${fit}` : ""}
    </span>
  ) : undefined;
  const missing = chosen && !chosen.available ? <span data-testid="base-reason">{chosen.reason}</span> : undefined;
  return (
    <Field label="Base model" htmlFor="train-base" hint={missing ? undefined : hint} error={missing}>
      <select id="train-base" className="select" value={value} onChange={(e) => onChange(e.target.value)}>
        {bases.map((b) => (
          <option key={b.name} value={b.name} disabled={!b.available && b.name !== value}>
            {b.label}{b.available ? "" : " (not installed)"}
          </option>
        ))}
      </select>
    </Field>
  );
}
