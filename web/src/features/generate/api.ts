// The Generate page's reads and writes.
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import type { GenerationPage, Job, JobPage, Lora, LoraPage } from "../../lib/types";

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

export interface ImagePlugin {
  name: string;
  capability: { available: boolean; reason?: string | null };
}

export function useLoraLibrary() {
  return useQuery({ queryKey: ["loras", { all: true }], queryFn: ({ signal }) => api.get<LoraPage>("/api/loras", { limit: 200 }, signal) });
}

/** A character's newest usable LoRA (trained or imported; checkpoints are picked by hand), or null when it has none. */
export function useCharacterLora(characterId: string) {
  return useQuery({
    queryKey: ["loras", { character: characterId, newest: true }],
    enabled: !!characterId,
    queryFn: async ({ signal }): Promise<Lora | null> => {
      const page = await api.get<LoraPage>("/api/loras", { character_id: characterId, limit: 50 }, signal);
      return page.items.find((l) => l.source !== "checkpoint" && l.file_present) ?? null;
    },
  });
}

export function useGallery() {
  return useInfiniteQuery({
    queryKey: ["generations", "gallery"],
    queryFn: ({ pageParam, signal }) => api.get<GenerationPage>("/api/generations", { limit: 24, cursor: pageParam ?? undefined }, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
}

export function useImagePlugins() {
  return useQuery({ queryKey: ["generation", "plugins"], queryFn: ({ signal }) => api.get<ImagePlugin[]>("/api/generation/plugins", undefined, signal) });
}

export function useFinishedRuns() {
  return useQuery({
    queryKey: ["jobs", { kind: "training", status: "succeeded", grid: true }],
    queryFn: ({ signal }) => api.get<JobPage>("/api/jobs", { kind: "training", status: "succeeded", limit: 50 }, signal),
  });
}

export const submitGeneration = (body: GenerationParams & { prompt: string; character_id: string | null; loras: LoraChoice[]; seed: number; num_images: number; plugin: string }) =>
  api.post<Job>("/api/generation", body);

export const submitGrid = (body: GenerationParams & { job_id: string; prompts: string[]; seeds: number[]; character_id: string | null; include_base: boolean }) =>
  api.post<Job>("/api/generation/grid", body);
