import { useInfiniteQuery } from "@tanstack/react-query";
import { api } from "../lib/api";
import type { ImagePage, QualityFlag } from "../lib/types";

/** GET /api/images with cursor pagination; `images` is every page loaded so far. */
export function useImages(filters: { character_id?: string | null; flag?: QualityFlag | null }, pageSize = 60) {
  const query = useInfiniteQuery({
    queryKey: ["images", "list", filters],
    queryFn: ({ pageParam, signal }) =>
      api.get<ImagePage>("/api/images", { ...filters, limit: pageSize, cursor: pageParam ?? undefined }, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
  return { ...query, images: query.data?.pages.flatMap((p) => p.items) ?? [] };
}
