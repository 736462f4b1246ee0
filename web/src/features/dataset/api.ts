// A character's dataset: its images (paged), captions, the quality report, and uploads.
import { infiniteQueryOptions, queryOptions, useInfiniteQuery } from "@tanstack/react-query";
import { ApiError } from "../../lib/api-errors";
import { FIRST_PAGE, client, postFilesWithProgress, unwrap, type paths, type Schemas, type UploadProgress } from "../../api/client";

export type ImageOut = Schemas["ImageOut"];
export type DatasetReport = Schemas["DatasetReport"];
export type UploadFileResult = Schemas["UploadFileResult"];
export type BulkCaptionAction = paths["/api/characters/{character_id}/captions/bulk"]["post"]["requestBody"]["content"]["application/json"];
export type ImageFilters = Omit<NonNullable<paths["/api/images"]["get"]["parameters"]["query"]>, "limit" | "cursor">;
export type QualityFlag = NonNullable<ImageFilters["flag"]>;

export const datasetKeys = {
  all: ["images"] as const,
  list: (filters: ImageFilters) => ["images", "list", filters] as const,
  report: (characterId: string, resolution?: number) => ["images", "report", characterId, resolution ?? null] as const,
};

export const datasetQueries = {
  /** GET /api/images with cursor pagination. */
  images: (filters: ImageFilters, pageSize = 60) =>
    infiniteQueryOptions({
      queryKey: datasetKeys.list(filters),
      queryFn: ({ pageParam, signal }) =>
        unwrap(client.GET("/api/images", { params: { query: { ...filters, limit: pageSize, cursor: pageParam ?? undefined } }, signal })),
      initialPageParam: FIRST_PAGE,
      getNextPageParam: (last) => last.next_cursor ?? null,
    }),
  /** The report for a training resolution (the smallest one a run will use); without one, the API's default. */
  report: (characterId: string, resolution?: number) =>
    queryOptions({
      queryKey: datasetKeys.report(characterId, resolution),
      queryFn: ({ signal }) =>
        unwrap(
          client.GET("/api/characters/{character_id}/dataset/report", {
            params: { path: { character_id: characterId }, query: resolution ? { resolution } : {} },
            signal,
          }),
        ),
    }),
};

/** The images matching `filters`; `images` is every page loaded so far. */
export function useImages(filters: ImageFilters, pageSize = 60) {
  const query = useInfiniteQuery(datasetQueries.images(filters, pageSize));
  return { ...query, images: query.data?.pages.flatMap((p) => p.items) ?? [] };
}

export function updateCaption(imageId: string, caption: string) {
  return unwrap(client.PATCH("/api/images/{image_id}", { params: { path: { image_id: imageId } }, body: { caption } }));
}

export function deleteImage(imageId: string) {
  return unwrap(client.DELETE("/api/images/{image_id}", { params: { path: { image_id: imageId } } }));
}

export function bulkCaptions(characterId: string, body: BulkCaptionAction) {
  return unwrap(client.POST("/api/characters/{character_id}/captions/bulk", { params: { path: { character_id: characterId } }, body }));
}

/** One upload request (images, zips, captions) with its progress; each file in it gets its own result. */
export function uploadImages(characterId: string, form: FormData, onProgress: (progress: UploadProgress) => void) {
  return postFilesWithProgress("/api/characters/{character_id}/images", { path: { character_id: characterId } }, form, onProgress);
}

/** The per-file results an upload refused as a whole (422) still carries, each with its reason. */
export function refusedUploadResults(error: unknown): UploadFileResult[] {
  if (!(error instanceof ApiError) || typeof error.body !== "object" || error.body === null) return [];
  const results: unknown = "results" in error.body ? error.body.results : undefined;
  return Array.isArray(results) ? results : [];
}

export type ImageEdit = NonNullable<ImageOut["edit"]>;
export type EditRequest = Schemas["EditRequest"];

/** Replace the photo's edit (rotation, then crop in the turned photo's pixels), drawn from the kept original. */
export function editImage(imageId: string, body: EditRequest) {
  return unwrap(client.PUT("/api/images/{image_id}/edit", { params: { path: { image_id: imageId } }, body }));
}

/** Crop to the largest face the face detector finds, after turning the photo `rotate` degrees. */
export function cropToFace(imageId: string, body: Schemas["FaceCropRequest"]) {
  return unwrap(client.POST("/api/images/{image_id}/edit/face", { params: { path: { image_id: imageId } }, body }));
}

/** The original photo back, as uploaded. */
export function undoEdit(imageId: string) {
  return unwrap(client.DELETE("/api/images/{image_id}/edit", { params: { path: { image_id: imageId } } }));
}
