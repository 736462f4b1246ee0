import { Link } from "react-router-dom";
import type { MediaRef } from "../../hooks/useJobLive";
import { formatBytes } from "../../lib/format";
import type { Lora } from "../../lib/types";
import { Badge, Empty } from "../ui";

/** The library LoRA a checkpoint row became: the event names it live; the run's LoRA list does after a reload. */
export function loraFor(checkpoint: MediaRef, runLoras: Lora[]): string | null {
  if (checkpoint.loraId) return checkpoint.loraId;
  const source = checkpoint.kind === "lora" ? "trained" : "checkpoint";
  return runLoras.find((l) => l.source === source && l.step === checkpoint.step)?.id ?? null;
}

export function CheckpointsPanel({ checkpoints, characterId, runLoras = [] }: { checkpoints: MediaRef[]; characterId?: string | null; runLoras?: Lora[] }) {
  const sorted = [...checkpoints].sort((a, b) => (a.step ?? 0) - (b.step ?? 0) || (a.kind === "lora" ? 1 : -1));
  if (!sorted.length) return <Empty icon="⛁" title="No checkpoints yet">Checkpoints are saved during training and at the end.</Empty>;
  return (
    <div className="table-wrap" data-testid="checkpoints-panel">
      <table className="table">
        <thead>
          <tr><th>Checkpoint</th><th>Step</th><th>Size</th><th /></tr>
        </thead>
        <tbody>
          {sorted.map((c) => {
            const loraId = loraFor(c, runLoras);
            return (
              <tr key={c.key} data-testid="checkpoint-row">
                <td className="mono">
                  {c.name} {c.kind === "lora" ? <Badge tone="ok">final LoRA</Badge> : null}
                </td>
                <td>{c.step ?? "final"}</td>
                <td className="muted">{formatBytes(c.bytes)}</td>
                <td>
                  <div className="row" style={{ justifyContent: "flex-end" }}>
                    <a className="btn sm" href={c.url} download>Download</a>
                    {loraId ? (
                      <Link className="btn sm primary" to={`/generate?lora=${loraId}${characterId ? `&character=${characterId}` : ""}`}>Generate with this</Link>
                    ) : null}
                  </div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
