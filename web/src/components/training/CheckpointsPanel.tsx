import { Link } from "react-router-dom";
import type { MediaRef } from "../../features/jobs/live";
import { formatBytes } from "../../lib/format";
import { Badge, Empty } from "../ui";

/** Each row names the library LoRA it became (`lora_id` in the artifact's meta, or the live checkpoint event). */
export function CheckpointsPanel({ checkpoints, characterId }: { checkpoints: MediaRef[]; characterId?: string | null }) {
  const sorted = [...checkpoints].sort((a, b) => (a.step ?? 0) - (b.step ?? 0) || (a.kind === "lora" ? 1 : -1));
  if (!sorted.length) return <Empty icon="⛁" title="No checkpoints yet">Checkpoints are saved during training and at the end.</Empty>;
  return (
    <div className="table-wrap" data-testid="checkpoints-panel">
      <table className="table">
        <thead>
          <tr><th>Checkpoint</th><th>Step</th><th>Size</th><th /></tr>
        </thead>
        <tbody>
          {sorted.map((c) => (
            <tr key={c.key} data-testid="checkpoint-row">
              <td className="mono">
                {c.name} {c.kind === "lora" ? <Badge tone="ok">final LoRA</Badge> : null}
              </td>
              <td>{c.step ?? "final"}</td>
              <td className="muted">{formatBytes(c.bytes)}</td>
              <td>
                <div className="row" style={{ justifyContent: "flex-end" }}>
                  <a className="btn sm" href={c.url} download>Download</a>
                  {c.loraId ? (
                    <Link className="btn sm primary" to={`/generate?lora=${c.loraId}${characterId ? `&character=${characterId}` : ""}`}>Generate with this</Link>
                  ) : null}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
