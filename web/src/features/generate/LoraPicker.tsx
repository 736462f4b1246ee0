import { Button } from "../../components/ui";
import type { Lora } from "../loras/api";
import type { LoraChoice } from "./api";

export function LoraPicker({ value, onChange, loras }: { value: LoraChoice[]; onChange: (v: LoraChoice[]) => void; loras: Lora[] }) {
  const available = loras.filter((l) => !value.some((v) => v.lora_id === l.id));
  return (
    <div className="stack-sm">
      {value.map((sel) => {
        const lora = loras.find((l) => l.id === sel.lora_id);
        return (
          <div key={sel.lora_id} className="stack-sm" style={{ background: "var(--bg-elev-2)", padding: 8, borderRadius: 6 }} data-testid="lora-selected">
            <div className="row between small">
              <span>{lora?.name ?? sel.lora_id.slice(0, 8)}{lora?.step ? <span className="faint"> · step {lora.step}</span> : null}</span>
              <Button size="sm" variant="ghost" aria-label="Remove LoRA" onClick={() => onChange(value.filter((v) => v.lora_id !== sel.lora_id))}>✕</Button>
            </div>
            <div className="row">
              <input type="range" min={-2} max={2} step={0.05} value={sel.weight} aria-label="LoRA weight" style={{ flex: 1 }}
                onChange={(e) => onChange(value.map((v) => (v.lora_id === sel.lora_id ? { ...v, weight: Number(e.target.value) } : v)))} />
              <span className="mono small" style={{ width: 40, textAlign: "right" }}>{sel.weight.toFixed(2)}</span>
            </div>
          </div>
        );
      })}
      <select className="select" aria-label="Add a LoRA" value="" onChange={(e) => e.target.value && onChange([...value, { lora_id: e.target.value, weight: 1 }])}>
        <option value="">{available.length ? "+ Add a LoRA…" : "No other LoRAs"}</option>
        {available.map((l) => <option key={l.id} value={l.id}>{l.name}{l.step ? ` (step ${l.step})` : ""}</option>)}
      </select>
    </div>
  );
}
