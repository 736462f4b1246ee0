// Training: the engines and their config schemas, presets, the server's estimate, and starting a run.
import { queryOptions } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";

export type TrainingPlugin = Schemas["TrainingPluginOut"];
export type Preset = Schemas["PresetOut"];
export type PresetCreate = Schemas["PresetCreate"];
export type TrainingCreate = Schemas["TrainingCreate"];

export const trainingKeys = {
  plugins: ["training", "plugins"] as const,
  presets: ["training", "presets"] as const,
  estimate: (request: TrainingCreate) => ["training", "estimate", request] as const,
};

export const trainingQueries = {
  plugins: () =>
    queryOptions({
      queryKey: trainingKeys.plugins,
      queryFn: ({ signal }) => unwrap(client.GET("/api/training/plugins", { signal })),
    }),
  presets: () =>
    queryOptions({
      queryKey: trainingKeys.presets,
      queryFn: ({ signal }) => unwrap(client.GET("/api/training/presets", { signal })),
      retry: false,
    }),
  /** What a run with this request would take (steps, time from measured speed) and what the server warns about. */
  estimate: (request: TrainingCreate) =>
    queryOptions({
      queryKey: trainingKeys.estimate(request),
      queryFn: ({ signal }) => unwrap(client.POST("/api/training/estimate", { body: request, signal })),
      retry: false,
    }),
};

export function startTraining(request: TrainingCreate) {
  return unwrap(client.POST("/api/training", { body: request }));
}

export function savePreset(preset: PresetCreate) {
  return unwrap(client.POST("/api/training/presets", { body: preset }));
}

export type Estimate = Schemas["TrainingEstimate"];

export type SettingsFile = Schemas["SettingsFile"];

/** A settings file's text, checked by the server as a run would be: the plugin and the complete config it gives. */
export function importSettings(text: string) {
  return unwrap(client.POST("/api/training/settings/import", { body: { text } }));
}

/** Where a run's or a preset's settings download as YAML, and a run as an ai-toolkit job file. */
export const settingsFileUrl = {
  run: (jobId: string) => `/api/training/runs/${encodeURIComponent(jobId)}/settings.yaml`,
  preset: (presetId: string) => `/api/training/presets/${encodeURIComponent(presetId)}/settings.yaml`,
  aiToolkit: (jobId: string) => `/api/training/runs/${encodeURIComponent(jobId)}/ai-toolkit.yaml`,
};
