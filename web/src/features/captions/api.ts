// The caption feature's calls: captioning plugins, caption jobs over a character's dataset, the caption linter.
import { queryOptions, useQuery } from "@tanstack/react-query";
import { useCallback, useSyncExternalStore } from "react";
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

export type CaptionLanguage = NonNullable<CaptionStyle["language"]>;

export const DEFAULT_PLUGIN = "qwen-vl";
/** "Regenerate caption" samples (temperature above 0) so each click gives another candidate, not the same text. */
export const REGENERATE_TEMPERATURE = 0.8;

/** The languages captions are written and checked in, as each is named in its own language. */
export const CAPTION_LANGUAGES: Record<CaptionLanguage, string> = { en: "English", fr: "Français", de: "Deutsch" };

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
  lint: (characterId: string, language: CaptionLanguage) => [...datasetKeys.all, "caption-lint", characterId, language] as const,
  plugins: ["captions", "plugins"] as const,
};

export const captionQueries = {
  lint: (characterId: string, language: CaptionLanguage) =>
    queryOptions({
      queryKey: captionKeys.lint(characterId, language),
      queryFn: ({ signal }) =>
        unwrap(
          client.GET("/api/characters/{character_id}/captions/lint", {
            params: { path: { character_id: characterId }, query: { language } },
            signal,
          }),
        ),
    }),
  plugins: () =>
    queryOptions({
      queryKey: captionKeys.plugins,
      queryFn: ({ signal }) => unwrap(client.GET("/api/captions/plugins", { signal })),
      staleTime: 60_000,
    }),
};

export const useCaptionLint = (characterId: string, language: CaptionLanguage) =>
  useQuery(captionQueries.lint(characterId, language));

// A character's caption language is kept in this browser: the AI captions are written in it and the linter checks
// the captions in it, so both must agree, across reloads too.
const LANGUAGE_CHANGED = "isengard:caption-language";
const languageKey = (characterId: string) => `isengard.captionLanguage.${characterId}`;
const isLanguage = (value: string | null): value is CaptionLanguage => value !== null && Object.hasOwn(CAPTION_LANGUAGES, value);

export function storedCaptionLanguage(characterId: string): CaptionLanguage {
  const stored = window.localStorage.getItem(languageKey(characterId));
  return isLanguage(stored) ? stored : "en";
}

function onLanguageChange(notify: () => void) {
  window.addEventListener(LANGUAGE_CHANGED, notify);
  window.addEventListener("storage", notify); // another tab chose
  return () => {
    window.removeEventListener(LANGUAGE_CHANGED, notify);
    window.removeEventListener("storage", notify);
  };
}

/** The character's caption language and its setter; every component using it follows a change at once. */
export function useCaptionLanguage(characterId: string) {
  const language = useSyncExternalStore(onLanguageChange, () => storedCaptionLanguage(characterId));
  const setLanguage = useCallback(
    (next: CaptionLanguage) => {
      window.localStorage.setItem(languageKey(characterId), next);
      window.dispatchEvent(new Event(LANGUAGE_CHANGED));
    },
    [characterId],
  );
  return [language, setLanguage] as const;
}
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
