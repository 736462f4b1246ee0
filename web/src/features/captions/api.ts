// The caption feature's calls: captioning plugins, caption jobs over a character's dataset, the caption linter.
import { queryOptions, useQuery } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";
import type { EventOf } from "../../api/events";
import { datasetKeys, updateCaption } from "../dataset/api";

export type CaptionStyle = Schemas["CaptionStyle"];
export type CaptionJobCreate = Schemas["CaptionJobCreate"];
export type CaptionFinding = Schemas["CaptionFinding"];
export type CaptionLint = Schemas["CaptionLintOut"];
export type CaptionPlugin = Schemas["CaptionPluginOut"];
export type CaptionScope = NonNullable<CaptionJobCreate["scope"]>;
/** What the worker sends over the job's event stream once an image is done (`written` false: caption kept). */
export type CaptionEvent = EventOf<"caption">;

export const DEFAULT_PLUGIN = "qwen-vl";

export const DEFAULT_STYLE: CaptionStyle = {
  trigger_placement: "first",
  max_words: 60,
  prefix: "",
  suffix: "",
  leave_identity_out: true,
  language: "en",
};

export const captionKeys = {
  // Under the dataset's key, so every caption edit (which refreshes the dataset) refreshes the findings too.
  lint: (characterId: string) => [...datasetKeys.all, "caption-lint", characterId] as const,
  plugins: ["captions", "plugins"] as const,
};

export const captionQueries = {
  lint: (characterId: string) =>
    queryOptions({
      queryKey: captionKeys.lint(characterId),
      queryFn: ({ signal }) =>
        unwrap(client.GET("/api/characters/{character_id}/captions/lint", { params: { path: { character_id: characterId } }, signal })),
    }),
  plugins: () =>
    queryOptions({
      queryKey: captionKeys.plugins,
      queryFn: ({ signal }) => unwrap(client.GET("/api/captions/plugins", { signal })),
      staleTime: 60_000,
    }),
};

export const useCaptionLint = (characterId: string) => useQuery(captionQueries.lint(characterId));
export const useCaptionPlugins = () => useQuery(captionQueries.plugins());

export function submitCaptionJob(characterId: string, body: CaptionJobCreate) {
  return unwrap(
    client.POST("/api/characters/{character_id}/captions/auto", { params: { path: { character_id: characterId } }, body }),
  );
}

/** The one-click fix: the finding's fixed caption, stored as a hand edit is. */
export const applyFix = (finding: CaptionFinding) => updateCaption(finding.image_id, finding.fixed_caption ?? "");

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
