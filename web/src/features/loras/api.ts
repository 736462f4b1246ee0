// The LoRA library: trained and imported LoRAs.
import { queryOptions } from "@tanstack/react-query";
import { client, postFilesWithProgress, unwrap, type paths, type Schemas } from "../../api/client";
import { ApiError } from "../../lib/api-errors";

export type Lora = Schemas["LoraOut"];
export type LoraFilters = NonNullable<paths["/api/loras"]["get"]["parameters"]["query"]>;

export const loraKeys = {
  all: ["loras"] as const,
  list: (filters: LoraFilters) => ["loras", filters] as const,
  characterDefault: (characterId: string) => ["loras", "default", characterId] as const,
};

export const loraQueries = {
  list: (filters: LoraFilters = {}) =>
    queryOptions({
      queryKey: loraKeys.list(filters),
      queryFn: ({ signal }) => unwrap(client.GET("/api/loras", { params: { query: filters }, signal })),
    }),
  /** The LoRA Generate attaches for the character, or null while it has none. */
  characterDefault: (characterId: string) =>
    queryOptions({
      queryKey: loraKeys.characterDefault(characterId),
      enabled: !!characterId,
      queryFn: async ({ signal }): Promise<Lora | null> =>
        (await unwrap(client.GET("/api/characters/{character_id}/default-lora", { params: { path: { character_id: characterId } }, signal }))).lora ?? null,
    }),
};

/** How the library says why a LoRA is its character's default. */
export const DEFAULT_LABELS: Record<string, string> = {
  chosen: "default · your choice",
  recommended: "default · recommended checkpoint",
  newest: "default · newest",
};

/** Keep a LoRA as its character's default (null: back to the automatic choice). */
export function chooseDefaultLora(characterId: string, loraId: string | null) {
  return unwrap(client.PUT("/api/characters/{character_id}/default-lora", { params: { path: { character_id: characterId } }, body: { lora_id: loraId } }));
}

export const SOURCE_LABELS: Record<string, string> = { trained: "trained here", checkpoint: "checkpoint", imported: "imported" };

export function renameLora(id: string, name: string) {
  return unwrap(client.PATCH("/api/loras/{lora_id}", { params: { path: { lora_id: id } }, body: { name } }));
}

export function deleteLora(id: string) {
  return unwrap(client.DELETE("/api/loras/{lora_id}", { params: { path: { lora_id: id } } }));
}

/** Import a LoRA file; `base`: the base the person chose when the API asked (the file could not tell). */
export function importLora(file: File, characterId: string, base?: string) {
  const form = new FormData();
  form.append("files", file, file.name);
  const query = { name: file.name.replace(/\.safetensors$/i, ""), character_id: characterId || undefined, base };
  return postFilesWithProgress("/api/loras/import", { query }, form, () => undefined).promise;
}

/** The bases an import asks the person to choose from (its 422 lists them when the file cannot tell); none otherwise. */
export function baseCandidates(error: unknown): string[] {
  if (!(error instanceof ApiError) || error.status !== 422) return [];
  const body = error.body as Partial<Schemas["LoraImportRefused"]> | null;
  const candidates = body && typeof body === "object" ? body.candidates : undefined;
  return Array.isArray(candidates) ? candidates.filter((name): name is string => typeof name === "string") : [];
}
