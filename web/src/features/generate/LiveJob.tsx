import { useState } from "react";
import { StatusBadge } from "../../components/training/JobBits";
import { Alert, ProgressBar } from "../../components/ui";
import { isFinal, type JobStatus } from "../jobs/api";
import { useJobEventStream } from "../jobs/hooks";

export function LiveJob({ jobId, onDone }: { jobId: string; onDone: () => void }) {
  const [progress, setProgress] = useState<{ step: number; total: number } | null>(null);
  const [status, setStatus] = useState<JobStatus>("queued");
  const [error, setError] = useState<string | null>(null);
  useJobEventStream(isFinal(status) ? null : jobId, (event) => {
    if (event.type === "progress") setProgress({ step: event.step, total: event.total });
    if (event.type === "status") {
      setStatus(event.status);
      if (event.status === "failed") setError(event.message ?? "generation failed");
      if (isFinal(event.status)) onDone();
    }
    if (event.type === "error") setError(event.message);
  });
  return (
    <div className="stack-sm" data-testid="generation-progress">
      <div className="row between small">
        <span className="muted">
          {status === "succeeded" ? "Done" : status === "failed" ? "Failed" : status === "cancelled" ? "Cancelled" : status === "queued" && !progress ? "Waiting for a worker…" : "Generating…"}
          {progress ? ` · step ${progress.step}/${progress.total}` : ""}
        </span>
        <StatusBadge status={status} />
      </div>
      <ProgressBar value={progress?.step ?? 0} max={progress?.total || 1} indeterminate={!progress} tone={status === "failed" ? "danger" : status === "succeeded" ? "ok" : undefined} />
      {error ? <Alert tone="danger" title="Generation failed">{error}</Alert> : null}
    </div>
  );
}
