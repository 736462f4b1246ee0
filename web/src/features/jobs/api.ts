// Jobs (training runs, generations): lists, one job, its persisted history, cancelling.
import { queryOptions } from "@tanstack/react-query";
import { client, unwrap, type paths, type Schemas } from "../../api/client";

export type Job = Schemas["JobOut"];
export type JobPage = Schemas["JobPage"];
export type JobStatus = Schemas["JobStatus"];
export type JobKind = Schemas["JobKind"];
export type JobHistory = Schemas["JobHistory"];
export type JobFilters = NonNullable<paths["/api/jobs"]["get"]["parameters"]["query"]>;

const FINAL: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];
export const isFinal = (status: JobStatus | null | undefined) => !!status && FINAL.includes(status);

const STATUSES: readonly JobStatus[] = ["queued", "running", ...FINAL];
export const isJobStatus = (value: string | null): value is JobStatus => STATUSES.some((status) => status === value);

export const ACTIVE_STATUSES = ["running", "queued"] as const satisfies readonly JobStatus[];

export const jobKeys = {
  all: ["jobs"] as const,
  list: (filters: object) => ["jobs", filters] as const,
  detail: (id: string) => ["jobs", "one", id] as const,
  history: (id: string) => ["jobs", "history", id] as const,
};

function listJobs(filters: JobFilters, signal?: AbortSignal) {
  return unwrap(client.GET("/api/jobs", { params: { query: filters }, signal }));
}

export const jobQueries = {
  list: (filters: JobFilters) =>
    queryOptions({ queryKey: jobKeys.list(filters), queryFn: ({ signal }) => listJobs(filters, signal) }),
  /** Running and queued jobs of a kind (running first); the list route filters by one status at a time. */
  active: (kind: JobKind | null) =>
    queryOptions({
      queryKey: jobKeys.list({ kind, status: "active" }),
      queryFn: async ({ signal }): Promise<JobPage> => {
        const pages = await Promise.all(ACTIVE_STATUSES.map((status) => listJobs({ kind, status, limit: 100 }, signal)));
        const items = pages.flatMap((p) => p.items);
        return { items, total: items.length, limit: 200, offset: 0 };
      },
      refetchInterval: 15000,
    }),
  detail: (id: string) =>
    queryOptions({
      queryKey: jobKeys.detail(id),
      queryFn: ({ signal }) => unwrap(client.GET("/api/jobs/{job_id}", { params: { path: { job_id: id } }, signal })),
      // Often enough that a lost worker shows within seconds (the job row says so; no event can).
      refetchInterval: (q) => (isFinal(q.state.data?.status) ? false : 3_000),
    }),
  history: (id: string) =>
    queryOptions({
      queryKey: jobKeys.history(id),
      queryFn: ({ signal }) => unwrap(client.GET("/api/jobs/{job_id}/history", { params: { path: { job_id: id } }, signal })),
      staleTime: Infinity,
      refetchOnWindowFocus: false,
    }),
};

export function cancelJob(id: string) {
  return unwrap(client.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: id } } }));
}

/** A job's last recorded progress (the fields of its last progress event; empty before the first one). */
export interface RecordedProgress {
  step: number | null;
  total: number | null;
  loss: number | null;
  smoothedLoss: number | null;
  itPerS: number | null;
  etaSeconds: number | null;
  stage: string | null;
}

const num = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);
const text = (value: unknown) => (typeof value === "string" ? value : null);

export function recordedProgress(job: Job): RecordedProgress {
  const p = job.progress ?? {};
  return {
    step: num(p.step),
    total: num(p.total),
    loss: num(p.loss),
    smoothedLoss: num(p.smoothed_loss),
    itPerS: num(p.it_per_s),
    etaSeconds: num(p.eta_seconds),
    stage: text(p.stage),
  };
}

/** The number of steps a training job was configured for, from its config snapshot (0 when it has none). */
export function configuredSteps(job: Job): number {
  return num(job.config?.steps) ?? 0;
}

/** Every kind of job the Jobs page lists (a kind the schema adds and this list lacks fails the typecheck). */
const KIND_LABELS = {
  training: "Training",
  generation: "Generation",
  caption: "Captioning",
  video: "Video",
  evaluation: "Evaluation",
} satisfies Record<JobKind, string>;
export const JOB_KINDS = Object.keys(KIND_LABELS).filter(isJobKind);
export const kindLabel = (kind: JobKind) => KIND_LABELS[kind];

export function isJobKind(value: string | null): value is JobKind {
  return value !== null && Object.hasOwn(KIND_LABELS, value);
}

export const JOB_STATUSES = STATUSES;

/** A new job with the settings of one that has ended (a training run on the dataset as it is now). */
export function rerunJob(id: string) {
  return unwrap(client.POST("/api/jobs/{job_id}/rerun", { params: { path: { job_id: id } } }));
}

/** A job that has ended, with its history and files (a run's LoRAs, a generation's images). */
export function deleteJob(id: string) {
  return unwrap(client.DELETE("/api/jobs/{job_id}", { params: { path: { job_id: id } } }));
}
