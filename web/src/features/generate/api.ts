// Image generation: the engines, starting a generation or a checkpoint grid, the gallery of results, and the
// Generate page's other reads (the LoRA library, a character's default LoRA, finished runs for the comparison grid).
import { infiniteQueryOptions, queryOptions, useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { FIRST_PAGE, client, unwrap, type Schemas } from "../../api/client";
import { jobQueries } from "../jobs/api";
import { loraQueries } from "../loras/api";

export interface GenerationParams {
  width: number;
  height: number;
  steps: number;
  guidance: number;
}

export interface LoraChoice {
  lora_id: string;
  weight: number;
}

export type ImagePlugin = Schemas["ImagePluginOut"];
export type Generation = Schemas["GenerationOut"];
export type GenerationCreate = Schemas["GenerationCreate"];
export type GridCreate = Schemas["GridCreate"];

export const generationKeys = {
  all: ["generations"] as const,
  gallery: ["generations", "gallery"] as const,
  plugins: ["generation", "plugins"] as const,
};

export const generationQueries = {
  plugins: () =>
    queryOptions({
      queryKey: generationKeys.plugins,
      queryFn: ({ signal }) => unwrap(client.GET("/api/generation/plugins", { signal })),
    }),
  /** Every generated image, newest first, a page at a time. */
  gallery: (pageSize = 24) =>
    infiniteQueryOptions({
      queryKey: generationKeys.gallery,
      queryFn: ({ pageParam, signal }) =>
        unwrap(client.GET("/api/generations", { params: { query: { limit: pageSize, cursor: pageParam ?? undefined } }, signal })),
      initialPageParam: FIRST_PAGE,
      getNextPageParam: (last) => last.next_cursor ?? null,
    }),
};

export function generate(request: GenerationCreate) {
  return unwrap(client.POST("/api/generation", { body: request }));
}

export function generateGrid(request: GridCreate) {
  return unwrap(client.POST("/api/generation/grid", { body: request }));
}

export function useLoraLibrary() {
  return useQuery(loraQueries.list({ limit: 200 }));
}

/** A character's default LoRA (the person's choice, else its newest run's recommended checkpoint, else its newest
 * LoRA; the API decides), or null when it has none. Under the library's key: a new default or LoRA refreshes it. */
export function useCharacterLora(characterId: string) {
  return useQuery(loraQueries.characterDefault(characterId));
}

export function useGallery() {
  return useInfiniteQuery(generationQueries.gallery());
}

export function useImagePlugins() {
  return useQuery(generationQueries.plugins());
}

export function useFinishedRuns() {
  return useQuery(jobQueries.list({ kind: "training", status: "succeeded", limit: 50 }));
}
