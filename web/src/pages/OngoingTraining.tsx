import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { ConnectionBadge, StatusBadge } from "../components/training/JobBits";
import { Button, Card, Empty, ErrorNotice, PageHeader, ProgressBar, Spinner } from "../components/ui";
import { cancelJob, configuredSteps, jobKeys, type Job } from "../features/jobs/api";
import { useActiveJobs, useJobLive } from "../features/jobs/hooks";
import { formatDuration, formatLoss, timeAgo } from "../lib/format";

function RunCard({ job }: { job: Job }) {
  const client = useQueryClient();
  const { live, connection } = useJobLive(job.id);
  const cancel = useMutation({
    mutationFn: () => cancelJob(job.id),
    onSuccess: () => void client.invalidateQueries({ queryKey: jobKeys.all }),
  });
  const p = live.progress;
  const status = live.status ?? job.status;
  const total = p?.total || configuredSteps(job);
  return (
    <Card>
      <div className="job-card" data-testid="run-card">
        <div className="row between">
          <div className="row">
            <Link className="link" to={`/training/${job.id}`}><h2>{job.name || job.id.slice(0, 8)}</h2></Link>
            <StatusBadge status={status} />
            {status === "running" ? <ConnectionBadge state={connection} /> : null}
          </div>
          <div className="row">
            <Link className="btn sm" to={`/training/${job.id}`}>Open</Link>
            <Button size="sm" variant="danger" onClick={() => cancel.mutate()} loading={cancel.isPending} disabled={job.cancel_requested}>
              {job.cancel_requested ? "Cancelling…" : "Cancel"}
            </Button>
          </div>
        </div>
        <ProgressBar value={p?.step ?? 0} max={total || 1} indeterminate={status === "queued"} label={`progress of ${job.name}`} />
        <div className="job-meta">
          <span>Step <b>{p?.step ?? 0}</b>/{total || "?"}</span>
          <span>Loss <b>{formatLoss(p?.loss)}</b></span>
          <span><b>{p?.itPerS ? p.itPerS.toFixed(2) : "—"}</b> it/s</span>
          <span>ETA <b>{status === "queued" ? "waiting for a worker" : formatDuration(p?.etaSeconds)}</b></span>
          <span className="faint">queued {timeAgo(job.created_at)}</span>
        </div>
        {cancel.error ? <ErrorNotice error={cancel.error} title="Could not cancel" /> : null}
      </div>
    </Card>
  );
}

export default function OngoingTraining() {
  const { data, error, isPending, refetch } = useActiveJobs("training");
  return (
    <div className="page">
      <PageHeader title="Ongoing training" description="Runs in progress and waiting in the queue, updated live." actions={<Link className="btn primary" to="/training/new">Start training</Link>} />
      {error ? <ErrorNotice error={error} title="Could not load runs" onRetry={() => void refetch()} /> : null}
      {isPending ? <Spinner /> : data && data.items.length === 0 ? (
        <Empty icon="◔" title="Nothing is training" action={<Link className="btn primary" to="/training/new">Start a run</Link>}>Finished runs are in the history.</Empty>
      ) : (
        <div className="stack">{data?.items.map((job) => <RunCard key={job.id} job={job} />)}</div>
      )}
    </div>
  );
}
