// The Generate page's reads: the LoRA library, a character's newest LoRA, finished runs for the comparison grid.
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";
import { generationQueries } from "../generation/api";
import { jobQueries } from "../jobs/api";
import { loraQueries, type Lora } from "../loras/api";

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

export function useLoraLibrary() {
  return useQuery(loraQueries.list({ limit: 200 }));
}

/** A character's newest usable LoRA (trained or imported; checkpoints are picked by hand), or null when it has none. */
export function useCharacterLora(characterId: string) {
  return useQuery({
    queryKey: ["loras", { character: characterId, newest: true }],
    enabled: !!characterId,
    queryFn: async ({ signal }): Promise<Lora | null> => {
      const page = await unwrap(client.GET("/api/loras", { params: { query: { character_id: characterId, limit: 50 } }, signal }));
      return page.items.find((l) => l.source !== "checkpoint" && l.file_present) ?? null;
    },
  });
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
