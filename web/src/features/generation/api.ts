// Image generation: the engines, starting a generation or a checkpoint grid, and the gallery of results.
import { infiniteQueryOptions, queryOptions } from "@tanstack/react-query";
import { FIRST_PAGE, client, unwrap, type Schemas } from "../../api/client";

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
