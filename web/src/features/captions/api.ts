// The caption feature's calls: captioning plugins, caption jobs over a character's dataset, the caption linter.
import { useQuery } from "@tanstack/react-query";
import type { components } from "../../api/schema";
import { api } from "../../lib/api";
import type { Job } from "../../lib/types";

type Schemas = components["schemas"];
export type CaptionStyle = Schemas["CaptionStyle"];
export type CaptionJobCreate = Schemas["CaptionJobCreate"];
export type CaptionFinding = Schemas["CaptionFinding"];
export type CaptionLint = Schemas["CaptionLintOut"];
export type CaptionPlugin = Schemas["CaptionPluginOut"];
export type CaptionScope = NonNullable<CaptionJobCreate["scope"]>;

/** What the worker sends over the job's event stream once an image is done (`written` false: caption kept). */
export interface CaptionEvent {
  type: "caption";
  job_id: string;
  image_id: string;
  index: number;
  total: number;
  caption: string;
  written: boolean;
}

export const DEFAULT_PLUGIN = "qwen-vl";

export const DEFAULT_STYLE: CaptionStyle = {
  trigger_placement: "first",
  max_words: 60,
  prefix: "",
  suffix: "",
  leave_identity_out: true,
  language: "en",
};

// Under ["images"], so every caption edit (which refreshes image queries) refreshes the findings too.
export const lintKey = (characterId: string) => ["images", "caption-lint", characterId] as const;

export function useCaptionLint(characterId: string) {
  return useQuery({
    queryKey: lintKey(characterId),
    queryFn: ({ signal }) => api.get<CaptionLint>(`/api/characters/${characterId}/captions/lint`, undefined, signal),
  });
}

export function useCaptionPlugins() {
  return useQuery({
    queryKey: ["captions", "plugins"],
    queryFn: ({ signal }) => api.get<CaptionPlugin[]>("/api/captions/plugins", undefined, signal),
    staleTime: 60_000,
  });
}

export function submitCaptionJob(characterId: string, body: CaptionJobCreate): Promise<Job> {
  return api.post<Job>(`/api/characters/${characterId}/captions/auto`, body);
}

export function cancelJob(jobId: string): Promise<Job> {
  return api.post<Job>(`/api/jobs/${jobId}/cancel`);
}

export function setCaption(imageId: string, caption: string): Promise<unknown> {
  return api.patch(`/api/images/${imageId}`, { caption });
}

/** Findings by image id, each image's in the order the linter gave them. */
export function findingsByImage(findings: CaptionFinding[]): Map<string, CaptionFinding[]> {
  const grouped = new Map<string, CaptionFinding[]>();
  for (const finding of findings) {
    const list = grouped.get(finding.image_id) ?? [];
    list.push(finding);
    grouped.set(finding.image_id, list);
  }
  return grouped;
}
