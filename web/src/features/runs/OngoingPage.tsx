import { Link } from "react-router-dom";
import { ConnectionBadge, StatusBadge } from "../../components/training/JobBits";
import { Card, Empty, ErrorNotice, PageHeader, ProgressBar, Spinner } from "../../components/ui";
import { formatDuration, formatLoss, timeAgo } from "../../lib/format";
import { configuredSteps, type Job } from "../jobs/api";
import { useActiveJobs, useJobLive } from "../jobs/hooks";
import { CancelRunButton } from "./CancelRunButton";

function RunCard({ job }: { job: Job }) {
  const { live, connection } = useJobLive(job.id);
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
            <CancelRunButton job={job} size="sm" label="Cancel" />
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
