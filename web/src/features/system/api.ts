// The server's own state: health (database, Redis, workers) for the side panel and the pages that adapt to the mode.
import { queryOptions, useQuery } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";


export const healthQuery = () =>
  queryOptions({
    queryKey: ["health"],
    queryFn: ({ signal }) => unwrap(client.GET("/api/health", { signal })),
    refetchInterval: 5000,
    retry: false,
  });

export function useHealth() {
  return useQuery(healthQuery());
}

export type BaseModel = Schemas["BaseOut"];

/** The bases of the registry with their availability on this installation (what is missing of the others). */
export const basesQuery = () =>
  queryOptions({
    queryKey: ["bases"],
    queryFn: ({ signal }) => unwrap(client.GET("/api/bases", { signal })),
    staleTime: 30_000,
  });

export function useBases() {
  return useQuery(basesQuery());
}

/** The dataset size that trains well ("10–30"), as the API states it for every page; empty until it is known. */
export function useRecommendedRange(): string {
  const range = useHealth().data?.recommended_images;
  return range && range.length === 2 ? `${range[0]}–${range[1]}` : "";
}
