// Query keys and the small reads several pages share.
import { useQuery } from "@tanstack/react-query";
import { api, type Schemas } from "./api";

export type Health = Schemas["Health"];

export const keys = {
  health: ["health"] as const,
  characters: ["characters"] as const,
  character: (id: string) => ["characters", id] as const,
  characterImages: (id: string) => ["characters", id, "images"] as const,
  images: (filters: object) => ["images", filters] as const,
  jobs: (filters: object) => ["jobs", filters] as const,
  job: (id: string) => ["jobs", "one", id] as const,
  jobHistory: (id: string) => ["jobs", "history", id] as const,
  plugins: ["training", "plugins"] as const,
  presets: ["training", "presets"] as const,
  loras: (filters: object) => ["loras", filters] as const,
  generations: (filters: object) => ["generations", filters] as const,
  capabilities: ["capabilities"] as const,
};

export function useHealth() {
  return useQuery({
    queryKey: keys.health,
    queryFn: ({ signal }) => api.get<Health>("/api/health", undefined, signal),
    refetchInterval: 5000,
    retry: false,
  });
}
