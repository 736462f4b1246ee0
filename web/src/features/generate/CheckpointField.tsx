import { useEffect } from "react";
import { Field } from "../../components/ui";
import { useBases } from "../system/api";
import type { Settings } from "./GenerateForm";

/** Base or distilled checkpoint, offered only when the chosen LoRAs' base has a distilled sibling (FLUX.2 [klein]):
 * a LoRA trained on the Base applies to it. Choosing one sets that checkpoint's steps and guidance from the
 * registry. */
export function CheckpointField({ s, setS, base }: { s: Settings; setS: (f: (prev: Settings) => Settings) => void; base: string | null }) {
  const bases = useBases();
  const spec = bases.data?.find((b) => b.name === base);
  const offered = Boolean(spec?.distilled_defaults);
  useEffect(() => {
    // LoRAs of a base without a distilled sibling: back to the base checkpoint, never a hidden choice.
    if (!offered && s.checkpoint !== "base") setS((prev) => ({ ...prev, checkpoint: "base" }));
  }, [offered, s.checkpoint, setS]);
  if (!spec?.distilled_defaults) return null;
  const choose = (checkpoint: Settings["checkpoint"]) => {
    const defaults = checkpoint === "distilled" ? spec.distilled_defaults : spec.defaults;
    setS((prev) => ({ ...prev, checkpoint, ...(defaults ? { steps: defaults.sample_steps, guidance: defaults.guidance } : {}) }));
  };
  return (
    <Field label="Checkpoint" htmlFor="gen-checkpoint" hint={`The distilled ${spec.label} samples in ${spec.distilled_defaults.sample_steps} steps; LoRAs trained on the Base apply to it`}>
      <select id="gen-checkpoint" className="select" value={s.checkpoint} onChange={(e) => choose(e.target.value as Settings["checkpoint"])}>
        <option value="base">Base ({spec.defaults.sample_steps} steps)</option>
        <option value="distilled">Distilled ({spec.distilled_defaults.sample_steps} steps)</option>
      </select>
    </Field>
  );
}
