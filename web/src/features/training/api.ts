// Start training: engines, presets, the server's estimate, submission, and a run to clone.
import { useQuery } from "@tanstack/react-query";
import type { JsonSchema } from "../../components/training/SchemaForm";
import { api, request } from "../../lib/api";
import { keys as queryKeys } from "../../lib/queries";
import type { Job } from "../../lib/types";

export interface TrainingPlugin {
  name: string;
  description?: string;
  capability?: { available: boolean; reason?: string | null };
  config_schema?: JsonSchema;
  schema?: JsonSchema;
  defaults?: Record<string, unknown>;
}

export interface Preset {
  id: string;
  name: string;
  plugin: string;
  config: Record<string, unknown>;
}

export interface Estimate {
  steps: number;
  estimated_seconds: number;
  basis: string;
  warnings?: string[];
}

export function useTrainingPlugins() {
  return useQuery({ queryKey: queryKeys.plugins, queryFn: ({ signal }) => api.get<TrainingPlugin[]>("/api/training/plugins", undefined, signal) });
}

export function usePresets() {
  return useQuery({ queryKey: queryKeys.presets, queryFn: ({ signal }) => api.get<Preset[]>("/api/training/presets", undefined, signal), retry: false });
}

/** The server's estimate knows the dataset and the measured speed; its refusal says why a run would not start. */
export function useEstimate(characterId: string, plugin: TrainingPlugin | undefined, values: Record<string, unknown>) {
  return useQuery({
    queryKey: ["training", "estimate", characterId, plugin?.name, values],
    queryFn: ({ signal }) =>
      request<Estimate>("/api/training/estimate", { method: "POST", body: { character_id: characterId, plugin: plugin?.name, config: values }, signal }),
    enabled: !!characterId && !!plugin && plugin.capability?.available !== false && Object.keys(values).length > 0,
    retry: false,
  });
}

/** The run a "Clone" link names (`?from=`): its character, engine and settings fill the form. */
export function useRunToClone(jobId: string | null) {
  return useQuery({ queryKey: queryKeys.job(jobId ?? ""), enabled: !!jobId, queryFn: ({ signal }) => api.get<Job>(`/api/jobs/${jobId}`, undefined, signal) });
}

export const startRun = (body: { character_id: string; plugin?: string; config: Record<string, unknown>; name?: string }) => api.post<Job>("/api/training", body);
export const savePreset = (body: { name: string; plugin?: string; config: Record<string, unknown> }) => api.post<Preset>("/api/training/presets", body);
