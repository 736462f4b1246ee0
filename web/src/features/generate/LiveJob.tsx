import { useState } from "react";
import { StatusBadge } from "../../components/training/JobBits";
import { Alert, ProgressBar } from "../../components/ui";
import { isFinal } from "../../hooks/useJobLive";
import { useSSE } from "../../hooks/useSSE";
import type { JobStatus } from "../../lib/types";

export function LiveJob({ jobId, onDone }: { jobId: string; onDone: () => void }) {
  const [progress, setProgress] = useState<{ step: number; total: number } | null>(null);
  const [status, setStatus] = useState<JobStatus>("queued");
  const [error, setError] = useState<string | null>(null);
  useSSE(isFinal(status) ? null : `/api/jobs/${jobId}/events`, (m) => {
    const d = (m.data ?? {}) as Record<string, unknown>;
    if (m.type === "progress") setProgress({ step: Number(d.step), total: Number(d.total) });
    if (m.type === "status") {
      setStatus(d.status as JobStatus);
      if (d.status === "failed") setError(String(d.message ?? "generation failed"));
      if (isFinal(d.status as JobStatus)) onDone();
    }
    if (m.type === "error") setError(String(d.message));
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
