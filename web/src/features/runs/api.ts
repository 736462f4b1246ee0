// Training runs: cancel, resume, delete, rerun.
import { api } from "../../lib/api";
import type { Job } from "../../lib/types";

export const cancelRun = (id: string) => api.post<Job>(`/api/jobs/${id}/cancel`);
export const resumeRun = (id: string) => api.post<Job>(`/api/jobs/${id}/resume`);
export const deleteRun = (id: string) => api.del(`/api/jobs/${id}`);

/** The same character, engine and settings as a new run (a new run number and default name). */
export const rerun = (job: Job) =>
  api.post<Job>("/api/training", { character_id: job.character_id, plugin: job.plugin, config: job.config ?? {} });
