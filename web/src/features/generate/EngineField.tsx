import { Field } from "../../components/ui";
import type { ImagePlugin } from "./api";

/** The image engine, offered when there is more than one; an engine that is not set up says why, right here. */
export function EngineField({ engines, value, onChange }: { engines: ImagePlugin[]; value: string; onChange: (engine: string) => void }) {
  if (engines.length < 2) return null;
  const chosen = engines.find((e) => e.name === value);
  const reason = chosen && !chosen.capability.available ? chosen.capability.reason ?? "it is not set up on this machine" : null;
  return (
    <Field label="Engine" htmlFor="gen-engine" hint={reason ? undefined : "Which image engine renders the request"}
      error={reason ? <span data-testid="engine-unavailable">Not set up: {chosen?.name}: {reason}</span> : undefined}>
      <select id="gen-engine" className="select" value={value} onChange={(e) => onChange(e.target.value)}>
        {engines.map((p) => <option key={p.name} value={p.name}>{p.capability.available ? p.name : `${p.name} (not set up)`}</option>)}
      </select>
    </Field>
  );
}
