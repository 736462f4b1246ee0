// Training runs that have ended: resume, delete, run again.
import { client, unwrap } from "../../api/client";
import type { Job } from "../jobs/api";
import { startTraining } from "../training/api";

export function resumeRun(id: string) {
  return unwrap(client.POST("/api/jobs/{job_id}/resume", { params: { path: { job_id: id } } }));
}

export function deleteRun(id: string) {
  return unwrap(client.DELETE("/api/jobs/{job_id}", { params: { path: { job_id: id } } }));
}

/** The same character, engine and settings as a new run (a new run number and default name). */
export function rerun(job: Job) {
  return startTraining({ character_id: job.character_id ?? "", plugin: job.plugin, config: job.config ?? {} });
}
