import { Alert, Badge } from "../../components/ui";
import type { RunEvaluation } from "./api";
import { formatScore } from "./api";
import { ScoreChart } from "./ScoreChart";

/** The run's quality card: what it was scored with, the chart, the recommended checkpoint and the verdicts. */
export function RunQuality({ evaluation, totalSteps }: { evaluation: RunEvaluation | undefined; totalSteps: number }) {
  if (!evaluation) return <div className="small muted">Scores appear as samples are made.</div>;
  if (evaluation.status !== "available") {
    return (
      <div className="small muted" data-testid="quality-unavailable">
        {evaluation.status === "pending" ? "Scores appear as samples are made." : `Scores not available: ${evaluation.reason ?? "no sample could be scored"}`}
      </div>
    );
  }
  const best = evaluation.checkpoints.find((c) => c.recommended);
  return (
    <div className="stack" data-testid="run-quality">
      <ScoreChart checkpoints={evaluation.checkpoints} totalSteps={totalSteps} recommended={evaluation.recommended_step ?? null} />
      <div className="row">
        {best ? (
          <span data-testid="recommended-step">
            <Badge tone="ok">recommended</Badge> step {best.step} · identity {formatScore(best.identity)} · adherence {formatScore(best.adherence)} · copying {formatScore(best.copying)}
          </span>
        ) : null}
        <span className="small faint">{evaluation.choice}</span>
      </div>
      {evaluation.verdicts.map((verdict) => (
        <Alert key={verdict.code} tone={verdict.code === "overtrained" || verdict.code === "flat" ? "warn" : "info"} title={verdict.message} />
      ))}
    </div>
  );
}
