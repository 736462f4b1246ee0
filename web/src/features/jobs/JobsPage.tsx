// Every job of every kind in one list: queued ones with their place and estimated start, running ones with live
// progress, finished ones with how they ended; filtered by kind, character and status; cancel, rerun, delete.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { StatusBadge } from "../../components/training/JobBits";
import { Badge, Button, Card, ConfirmButton, Empty, ErrorNotice, Field, PageHeader, Pager, ProgressBar, Spinner } from "../../components/ui";
import { formatDuration, timeAgo } from "../../lib/format";
import { useCharacters } from "../characters/api";
import { generationKeys } from "../generate/api";
import { loraKeys } from "../loras/api";
import { RunFileLinks } from "../runs/RunActions";
import {
  JOB_KINDS,
  JOB_STATUSES,
  cancelJob,
  deleteJob,
  isFinal,
  isJobKind,
  isJobStatus,
  jobKeys,
  jobQueries,
  kindLabel,
  recordedProgress,
  rerunJob,
  type Job,
} from "./api";
import { useJobEventStream } from "./hooks";

const PAGE = 50;

/** Where a job's own page is: a run has one; a generation's images are in the gallery; captions on the character. */
function jobLink(job: Job): string | null {
  if (job.kind === "training") return `/training/${job.id}`;
  if (job.kind === "generation") return "/generate";
  if (job.kind === "caption" && job.character_id) return `/characters/${job.character_id}`;
  return null;
}

/** "in about 3m 20s" from an estimated start time; the reason when there is no estimate. */
function startText(job: Job): string {
  if (job.queue_note) return job.queue_note;
  if (!job.estimated_start_at) return "start time unknown until a job like it has finished";
  const seconds = (new Date(job.estimated_start_at).getTime() - Date.now()) / 1000;
  return seconds < 5 ? "starts any moment" : `starts in about ${formatDuration(seconds)}`;
}

/** A running job's progress, live from its own event stream (the list itself refreshes on status changes). */
function LiveProgress({ job }: { job: Job }) {
  const recorded = recordedProgress(job);
  const [live, setLive] = useState<{ step: number; total: number; eta: number | null } | null>(null);
  useJobEventStream(job.id, (event) => {
    if (event.type === "progress") setLive({ step: event.step, total: event.total, eta: event.eta_seconds ?? null });
  });
  const step = live?.step ?? recorded.step ?? 0;
  const total = live?.total ?? recorded.total ?? 0;
  const eta = live ? live.eta : recorded.etaSeconds;
  return (
    <div className="stack-sm" data-testid="job-progress">
      <ProgressBar value={step} max={total || 1} indeterminate={!total} label={`progress of ${job.name}`} />
      <span className="small muted" data-dynamic>
        {total ? `${step}/${total}` : "starting"}
        {eta != null ? ` · about ${formatDuration(eta)} left` : ""}
      </span>
    </div>
  );
}

function JobActions({ job }: { job: Job }) {
  const client = useQueryClient();
  const refresh = () => {
    void client.invalidateQueries({ queryKey: jobKeys.all });
    void client.invalidateQueries({ queryKey: loraKeys.all });
    void client.invalidateQueries({ queryKey: generationKeys.all });
  };
  const cancel = useMutation({ mutationFn: () => cancelJob(job.id), onSuccess: refresh });
  const again = useMutation({ mutationFn: () => rerunJob(job.id), onSuccess: refresh });
  const ended = isFinal(job.status);
  const what = job.kind === "training" ? "run" : "job";
  return (
    <div className="stack-sm">
      <div className="row" style={{ gap: 4 }}>
        {!ended && job.kind === "training" ? (
          // Hours of training may be behind the button: it asks first.
          <ConfirmButton
            size="sm"
            title={`Cancel ${job.name || "this run"}?`}
            description="Training stops at the next step. Checkpoints saved so far are kept: the run can resume from the last one."
            confirmLabel="Cancel run"
            cancelLabel="Keep training"
            disabled={job.cancel_requested}
            onConfirm={() => cancel.mutateAsync()}
          >
            {job.cancel_requested ? "Cancelling…" : "Cancel"}
          </ConfirmButton>
        ) : null}
        {!ended && job.kind !== "training" ? (
          <Button size="sm" variant="danger" onClick={() => cancel.mutate()} loading={cancel.isPending} disabled={job.cancel_requested}>
            {job.cancel_requested ? "Cancelling…" : "Cancel"}
          </Button>
        ) : null}
        {job.kind === "training" ? <RunFileLinks job={job} /> : null}
        {ended ? (
          <Button size="sm" variant="ghost" onClick={() => again.mutate()} loading={again.isPending}>Rerun</Button>
        ) : null}
        {ended ? (
          <ConfirmButton
            size="sm"
            variant="ghost"
            title={`Delete ${job.name || `this ${what}`}?`}
            description={
              job.kind === "training"
                ? "Its history, samples, checkpoints and LoRAs are removed. Images generated with them stay in the gallery."
                : job.kind === "generation"
                  ? "The job and the images it made are removed from the gallery."
                  : "The job and its history are removed. What it changed (captions) stays."
            }
            confirmLabel={`Delete ${what}`}
            onConfirm={async () => {
              await deleteJob(job.id);
              refresh();
            }}
          >
            Delete
          </ConfirmButton>
        ) : null}
      </div>
      {cancel.error ? <ErrorNotice error={cancel.error} title="Not cancelled" /> : null}
      {again.error ? <ErrorNotice error={again.error} title="Not started again" /> : null}
    </div>
  );
}

function JobRow({ job, characterName }: { job: Job; characterName: string | null }) {
  const link = jobLink(job);
  const title = job.name || job.id.slice(0, 8);
  return (
    <li className="job-row" data-testid="job-row" data-job-id={job.id} data-kind={job.kind} data-status={job.status}>
      <div className="row between" style={{ alignItems: "flex-start" }}>
        <div className="stack-sm job-details">
          <div className="row" style={{ gap: 6 }}>
            <Badge tone="accent">{kindLabel(job.kind)}</Badge>
            <StatusBadge status={job.status} />
            {link ? <Link className="link job-title" to={link}>{title}</Link> : <span className="job-title">{title}</span>}
          </div>
          <div className="small muted job-meta">
            {characterName ? <span>{characterName}</span> : null}
            <span>{job.plugin}</span>
            {job.status === "queued" ? (
              <span data-testid="job-queue" data-dynamic>
                <b>#{job.queue_position ?? "?"}</b> in the {kindLabel(job.kind).toLowerCase()} queue · {startText(job)}
              </span>
            ) : null}
            {isFinal(job.status) ? (
              <span data-dynamic>
                ended {timeAgo(job.finished_at ?? job.created_at)}
                {job.duration_seconds != null ? ` · took ${formatDuration(job.duration_seconds)}` : ""}
              </span>
            ) : null}
            {job.status === "running" && job.worker_lost ? <span className="job-error">its worker stopped answering</span> : null}
          </div>
          {job.status === "running" ? <LiveProgress job={job} /> : null}
          {job.status === "failed" && job.error ? <div className="small job-error">{job.error}</div> : null}
        </div>
        <JobActions job={job} />
      </div>
    </li>
  );
}

export default function JobsPage() {
  const [params, setParams] = useSearchParams();
  const kindParam = params.get("kind");
  const statusParam = params.get("status");
  const kind = isJobKind(kindParam) ? kindParam : null;
  const status = isJobStatus(statusParam) ? statusParam : null;
  const characterId = params.get("character");
  const [offset, setOffset] = useState(0);
  const characters = useCharacters();
  const names = useMemo(() => new Map((characters.data ?? []).map((c) => [c.id, c.name])), [characters.data]);
  const { data, error, isPending, refetch } = useQuery({
    ...jobQueries.list({ kind, status, character_id: characterId, offset, limit: PAGE }),
    // Status changes arrive over the event stream; this only keeps the estimated starts fresh.
    refetchInterval: 30_000,
  });
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    setOffset(0);
  };
  const filtered = kind !== null || status !== null || characterId !== null;
  return (
    <div className="page">
      <PageHeader title="Jobs" description="Every training run, generation and caption job: waiting, running and finished, updated live." />
      <div className="card">
        <div className="form-grid">
          <Field label="Kind" htmlFor="jobs-kind">
            <select id="jobs-kind" className="select" value={kind ?? ""} onChange={(e) => set("kind", e.target.value)}>
              <option value="">All kinds</option>
              {JOB_KINDS.map((k) => <option key={k} value={k}>{kindLabel(k)}</option>)}
            </select>
          </Field>
          <Field label="Character" htmlFor="jobs-character">
            <select id="jobs-character" className="select" value={characterId ?? ""} onChange={(e) => set("character", e.target.value)}>
              <option value="">All characters</option>
              {characters.data?.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
            </select>
          </Field>
          <Field label="Status" htmlFor="jobs-status">
            <select id="jobs-status" className="select" value={status ?? ""} onChange={(e) => set("status", e.target.value)}>
              <option value="">Any status</option>
              {JOB_STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
            </select>
          </Field>
        </div>
      </div>
      {error ? <ErrorNotice error={error} title="Could not load the jobs" onRetry={() => void refetch()} /> : null}
      {isPending ? <Spinner /> : !data || data.items.length === 0 ? (
        <Empty icon="≡" title={filtered ? "No jobs match" : "No jobs yet"}>
          {filtered ? "Try another kind, character or status." : "Training runs, generations and caption jobs appear here."}
        </Empty>
      ) : (
        <Card flush>
          <ul className="job-list" data-testid="job-list" aria-label="Jobs">
            {data.items.map((job) => (
              <JobRow key={job.id} job={job} characterName={job.character_id ? names.get(job.character_id) ?? null : null} />
            ))}
          </ul>
        </Card>
      )}
      {data ? <Pager offset={offset} size={PAGE} total={data.total} onOffset={setOffset} /> : null}
    </div>
  );
}
