import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { CheckpointsPanel } from "../../components/training/CheckpointsPanel";
import { ConnectionBadge, StatusBadge } from "../../components/training/JobBits";
import { LossChart, type ValidationPoint } from "../../components/training/LossChart";
import { TrainingLogsPanel } from "../../components/training/TrainingLogsPanel";
import { Alert, Button, Card, ErrorNotice, PageHeader, ProgressBar, Spinner, Stat, Tab, TabList, TabPanel, Tabs } from "../../components/ui";
import { formatDate, formatDuration, formatLoss } from "../../lib/format";
import { evaluationQueries, scoresByArtifact } from "../evaluation/api";
import { RunQuality } from "../evaluation/RunQuality";
import { configuredSteps, isFinal, jobKeys } from "../jobs/api";
import { useJobLive } from "../jobs/hooks";
import { resumeRun } from "./api";
import { CancelRunButton } from "./CancelRunButton";
import { RunFileLinks } from "./RunActions";
import { SamplesGrid } from "./SamplesGrid";

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

/** The validation losses a finished run reports: where it started (0, or the step it resumed from) and its end. */
function validationPoints(result: Record<string, unknown>): ValidationPoint[] {
  const points: ValidationPoint[] = [];
  if (typeof result.validation_loss_start === "number") points.push({ step: Number(result.resumed_from ?? 0), loss: result.validation_loss_start });
  if (typeof result.validation_loss_end === "number" && typeof result.steps === "number") points.push({ step: result.steps, loss: result.validation_loss_end });
  return points;
}

export default function TrainingDetail() {
  const { jobId = "" } = useParams();
  const client = useQueryClient();
  const { job, live, connection, historyError, jobError } = useJobLive(jobId);
  const finished = job ? isFinal(live.status ?? job.status) : false;
  const evaluation = useQuery({ ...evaluationQueries.run(jobId, !finished), enabled: !!job && job.kind === "training" }).data;
  const resume = useMutation({
    mutationFn: () => resumeRun(jobId),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: jobKeys.detail(jobId) });
      void client.invalidateQueries({ queryKey: jobKeys.history(jobId) });
      void client.invalidateQueries({ queryKey: jobKeys.all });
    },
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
  // A stopped run with a checkpoint can continue from it, as a new attempt of the same run.
  const lastCheckpoint = Math.max(0, ...[...live.checkpoints.values()].filter((c) => c.kind === "checkpoint").map((c) => c.step ?? 0));
  const resumable = job.kind === "training" && (status === "cancelled" || status === "failed") && lastCheckpoint > 0;
  // The job row tells when its worker stopped beating: the last step, speed and ETA are then not live any more.
  const lost = running && status === "running" && !!job.worker_lost;
  const resumed = running && !lost && live.statusMessage?.startsWith("resumed") ? live.statusMessage : null;
  return (
    <div className="page">
      <PageHeader
        crumbs={<><Link to="/training/history">Training</Link><span>/</span></>}
        title={job.name || `Run ${job.id.slice(0, 8)}`}
        description={<>Plugin <code>{job.plugin}</code> · started {formatDate(job.started_at ?? job.created_at)} · <span data-testid="run-attempt">attempt {Math.max(1, live.attempt || job.attempts)} of {job.max_attempts}</span>{job.character_id ? <> · <Link className="link" to={`/characters/${job.character_id}`}>character</Link></> : null}</>}
        actions={
          <>
            <span data-testid="run-status"><StatusBadge status={status} /></span>
            {running && !lost ? <ConnectionBadge state={connection} /> : null}
            {running ? <CancelRunButton job={job} /> : null}
            {resumable ? <Button variant="primary" onClick={() => resume.mutate()} loading={resume.isPending}>Resume from step {lastCheckpoint}</Button> : null}
            {job.kind === "training" ? <RunFileLinks job={job} /> : null}
          </>
        }
      />
      {resume.error ? <ErrorNotice error={resume.error} title="Could not resume" /> : null}
      {error ? <Alert tone="danger" title="The run failed">{error}</Alert> : null}
      {lost ? <Alert tone="warn" title="worker lost — waiting to resume"><span data-testid="worker-state">worker lost — waiting to resume</span>: its worker stopped sending heartbeats at step {progress?.step ?? 0}. Another worker takes the run over from its last checkpoint.</Alert> : null}
      {resumed ? <div className="small muted" data-testid="resume-note">{resumed}</div> : null}
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
            <Stat label="Speed" value={progress?.itPerS && !lost ? `${progress.itPerS.toFixed(2)} it/s` : "—"} />
            <Stat label={running ? "ETA" : "Duration"} value={running ? (lost ? "—" : formatDuration(progress?.etaSeconds)) : formatDuration(job.duration_seconds)} />
          </div>
        </div>
      </Card>
      <Card title="Loss">
        <LossChart points={[...live.loss.values()]} totalSteps={total} validation={validationPoints(job.result ?? {})} />
      </Card>
      {job.kind === "training" ? (
        <Card title="Quality" description="Each sample scored against the character's photos: identity, prompt adherence, copying">
          <RunQuality evaluation={evaluation} totalSteps={total} />
        </Card>
      ) : null}
      <Tabs defaultValue="samples">
        <TabList label="Run details">
          <Tab value="samples">Samples ({live.samples.size})</Tab>
          <Tab value="checkpoints">Checkpoints ({live.checkpoints.size})</Tab>
          <Tab value="logs">Logs</Tab>
          <Tab value="config">Config</Tab>
        </TabList>
        <TabPanel value="samples"><Card><SamplesGrid samples={[...live.samples.values()]} checkpoints={[...live.checkpoints.values()]} characterId={job.character_id} scores={scoresByArtifact(evaluation)} /></Card></TabPanel>
        <TabPanel value="checkpoints"><Card flush><CheckpointsPanel checkpoints={[...live.checkpoints.values()]} characterId={job.character_id} scores={evaluation?.checkpoints} /></Card></TabPanel>
        <TabPanel value="logs"><Card><TrainingLogsPanel lines={live.logs} /></Card></TabPanel>
        <TabPanel value="config"><Card><ConfigList config={job.config ?? {}} /></Card></TabPanel>
      </Tabs>
    </div>
  );
}
