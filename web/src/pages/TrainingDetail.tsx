import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { CheckpointsPanel } from "../components/training/CheckpointsPanel";
import { ConnectionBadge, StatusBadge } from "../components/training/JobBits";
import { LossChart } from "../components/training/LossChart";
import { SampleImagesPanel } from "../components/training/SampleImagesPanel";
import { TrainingLogsPanel } from "../components/training/TrainingLogsPanel";
import { Alert, Button, Card, ErrorNotice, PageHeader, ProgressBar, Spinner, Stat, Tab, TabList, TabPanel, Tabs } from "../components/ui";
import { cancelJob, configuredSteps, isFinal, jobKeys } from "../features/jobs/api";
import { useJobLive } from "../features/jobs/hooks";
import { formatDate, formatDuration, formatLoss } from "../lib/format";

function ConfigList({ config }: { config: Record<string, unknown> }) {
  const entries = Object.entries(config);
  if (!entries.length) return <span className="muted">No configuration recorded.</span>;
  return (
    <dl className="config-table" data-testid="config-used">
      {entries.map(([key, value]) => (
        <div key={key} style={{ display: "contents" }}>
          <dt>{key.replace(/_/g, " ")}</dt>
          <dd>{typeof value === "object" && value !== null ? (Array.isArray(value) ? value.join(", ") : Object.entries(value).map(([k, v]) => `${k}: ${String(v)}`).join(" · ")) : String(value)}</dd>
        </div>
      ))}
    </dl>
  );
}

export default function TrainingDetail() {
  const { jobId = "" } = useParams();
  const client = useQueryClient();
  const { job, live, connection, historyError, jobError } = useJobLive(jobId);
  const cancel = useMutation({
    mutationFn: () => cancelJob(jobId),
    onSuccess: () => void client.invalidateQueries({ queryKey: jobKeys.detail(jobId) }),
  });
  if (jobError) {
    return (
      <div className="page">
        <ErrorNotice error={jobError} title="Could not open this run" />
        <Link className="link" to="/training/history">← Training history</Link>
      </div>
    );
  }
  if (!job) return <div className="page"><Spinner label="Loading the run" /></div>;
  const status = live.status ?? job.status;
  const progress = live.progress;
  const total = progress?.total || configuredSteps(job);
  const running = !isFinal(status);
  const error = live.error ?? job.error;
  return (
    <div className="page">
      <PageHeader
        crumbs={<><Link to="/training/history">Training</Link><span>/</span></>}
        title={job.name || `Run ${job.id.slice(0, 8)}`}
        description={<>Plugin <code>{job.plugin}</code> · started {formatDate(job.started_at ?? job.created_at)}{job.character_id ? <> · <Link className="link" to={`/characters/${job.character_id}`}>character</Link></> : null}</>}
        actions={
          <>
            <span data-testid="run-status"><StatusBadge status={status} /></span>
            {running ? <ConnectionBadge state={connection} /> : null}
            {running ? (
              <Button variant="danger" onClick={() => cancel.mutate()} loading={cancel.isPending} disabled={job.cancel_requested}>
                {job.cancel_requested ? "Cancelling…" : "Cancel run"}
              </Button>
            ) : null}
          </>
        }
      />
      {cancel.error ? <ErrorNotice error={cancel.error} title="Could not cancel" /> : null}
      {error ? <Alert tone="danger" title="The run failed">{error}</Alert> : null}
      {historyError ? <ErrorNotice error={historyError} title="Could not load the run's history" /> : null}
      <Card>
        <div className="stack">
          <div className="row between">
            <span className="muted" data-testid="step-counter">
              Step <b style={{ color: "var(--text)" }}>{progress?.step ?? 0}</b> of {total || "?"}
              {progress?.stage ? <span className="faint"> · {progress.stage}</span> : null}
            </span>
            <span className="muted">{total ? Math.round(((progress?.step ?? 0) / total) * 100) : 0}%</span>
          </div>
          <ProgressBar value={progress?.step ?? 0} max={total || 1} tone={status === "succeeded" ? "ok" : status === "failed" ? "danger" : undefined} indeterminate={status === "queued"} label="training progress" />
          <div className="stats">
            <Stat label="Loss" value={formatLoss(progress?.loss)} />
            <Stat label="Smoothed" value={formatLoss(progress?.smoothed)} />
            <Stat label="Speed" value={progress?.itPerS ? `${progress.itPerS.toFixed(2)} it/s` : "—"} />
            <Stat label={running ? "ETA" : "Duration"} value={running ? formatDuration(progress?.etaSeconds) : formatDuration(job.duration_seconds)} />
          </div>
        </div>
      </Card>
      <Card title="Loss">
        <LossChart points={[...live.loss.values()]} totalSteps={total} />
      </Card>
      <Tabs defaultValue="samples">
        <TabList label="Run details">
          <Tab value="samples">Samples ({live.samples.size})</Tab>
          <Tab value="checkpoints">Checkpoints ({live.checkpoints.size})</Tab>
          <Tab value="logs">Logs</Tab>
          <Tab value="config">Config</Tab>
        </TabList>
        <TabPanel value="samples"><Card><SampleImagesPanel samples={[...live.samples.values()]} /></Card></TabPanel>
        <TabPanel value="checkpoints"><Card flush><CheckpointsPanel checkpoints={[...live.checkpoints.values()]} characterId={job.character_id} /></Card></TabPanel>
        <TabPanel value="logs"><Card><TrainingLogsPanel lines={live.logs} /></Card></TabPanel>
        <TabPanel value="config"><Card><ConfigList config={job.config ?? {}} /></Card></TabPanel>
      </Tabs>
    </div>
  );
}
