// Shapes the pages use, taken from the generated schema (src/api/schema.d.ts).
// `FromSchema` picks the generated type once the API publishes it and falls back to the shape below until then.
import type { components } from "../api/schema";

type Schemas = components["schemas"];
type FromSchema<K extends string, Fallback> = K extends keyof Schemas ? Schemas[K] : Fallback;

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export type Job = FromSchema<
  "JobOut",
  {
    id: string;
    kind: "training" | "generation" | "video";
    status: JobStatus;
    plugin: string;
    character_id: string | null;
    name: string;
    config?: Record<string, unknown>;
    progress?: Record<string, unknown>;
    result?: Record<string, unknown>;
    error?: string | null;
    attempts: number;
    max_attempts: number;
    worker_id?: string | null;
    cancel_requested?: boolean;
    created_at: string;
    started_at?: string | null;
    finished_at?: string | null;
    duration_seconds?: number | null;
  }
>;

export type JobPage = FromSchema<"JobPage", { items: Job[]; total: number; limit: number; offset: number }>;

export type Character = Schemas["CharacterOut"];
export type ImageOut = Schemas["ImageOut"];
export type ImagePage = Schemas["ImagePage"];
export type DatasetReport = Schemas["DatasetReport"];
export type UploadOut = Schemas["UploadOut"];
export type UploadFileResult = Schemas["UploadFileResult"];
export type JobHistory = Schemas["JobHistory"];
export type QualityFlag = "small" | "blurry" | "extreme_aspect" | "near_duplicate" | "missing_caption";

export const FLAG_LABELS: Record<QualityFlag, string> = {
  small: "Too small",
  blurry: "Blurry",
  extreme_aspect: "Extreme aspect",
  near_duplicate: "Near duplicate",
  missing_caption: "No caption",
};
export type Lora = Schemas["LoraOut"];
export type LoraPage = Schemas["LoraPage"];
export type Generation = Schemas["GenerationOut"];
export type GenerationPage = Schemas["GenerationPage"];
