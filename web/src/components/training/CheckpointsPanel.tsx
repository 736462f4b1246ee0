import { Link } from "react-router-dom";
import { formatScore, type CheckpointScores } from "../../features/evaluation/api";
import type { MediaRef } from "../../features/jobs/live";
import { formatBytes } from "../../lib/format";
import { Badge, Empty } from "../ui";

/**
 * Each row names the library LoRA it became (`lora_id` in the artifact's meta, or the live checkpoint event). With
 * scores, the recommended checkpoint comes first and is marked, then the rest by step, each with its scores.
 */
export function CheckpointsPanel({ checkpoints, characterId, scores }: { checkpoints: MediaRef[]; characterId?: string | null; scores?: CheckpointScores[] }) {
  const byStep = new Map((scores ?? []).map((s) => [s.step, s]));
  const recommended = (c: MediaRef) => (c.step != null && byStep.get(c.step)?.recommended && byStep.get(c.step)?.checkpoint_artifact_id === c.key ? 1 : 0);
  const sorted = [...checkpoints].sort((a, b) => recommended(b) - recommended(a) || (a.step ?? 0) - (b.step ?? 0) || (a.kind === "lora" ? 1 : -1));
  if (!sorted.length) return <Empty icon="⛁" title="No checkpoints yet">Checkpoints are saved during training and at the end.</Empty>;
  return (
    <div className="table-wrap" data-testid="checkpoints-panel">
      <table className="table">
        <thead>
          <tr><th>Checkpoint</th><th>Step</th>{scores ? <><th>Identity</th><th>Adherence</th><th>Copying</th></> : null}<th>Size</th><th /></tr>
        </thead>
        <tbody>
          {sorted.map((c) => (
            <tr key={c.key} data-testid="checkpoint-row" data-recommended={recommended(c) ? "true" : undefined}>
              <td className="mono">
                {c.name} {c.kind === "lora" ? <Badge tone="ok">final LoRA</Badge> : null}{" "}
                {recommended(c) ? <span data-testid="recommended-checkpoint"><Badge tone="ok">recommended</Badge></span> : null}
              </td>
              <td>{c.step ?? "final"}</td>
              {scores ? (
                <>
                  <td>{formatScore(c.step != null ? byStep.get(c.step)?.identity : null)}</td>
                  <td>{formatScore(c.step != null ? byStep.get(c.step)?.adherence : null)}</td>
                  <td>{formatScore(c.step != null ? byStep.get(c.step)?.copying : null)}</td>
                </>
              ) : null}
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
