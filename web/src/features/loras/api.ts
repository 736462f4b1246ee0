// The LoRA library: trained and imported LoRAs.
import { queryOptions } from "@tanstack/react-query";
import { client, postFilesWithProgress, unwrap, type paths, type Schemas } from "../../api/client";

export type Lora = Schemas["LoraOut"];
export type LoraFilters = NonNullable<paths["/api/loras"]["get"]["parameters"]["query"]>;

export const loraKeys = {
  all: ["loras"] as const,
  list: (filters: LoraFilters) => ["loras", filters] as const,
};

export const loraQueries = {
  list: (filters: LoraFilters = {}) =>
    queryOptions({
      queryKey: loraKeys.list(filters),
      queryFn: ({ signal }) => unwrap(client.GET("/api/loras", { params: { query: filters }, signal })),
    }),
};

export const SOURCE_LABELS: Record<string, string> = { trained: "trained here", checkpoint: "checkpoint", imported: "imported" };

export function renameLora(id: string, name: string) {
  return unwrap(client.PATCH("/api/loras/{lora_id}", { params: { path: { lora_id: id } }, body: { name } }));
}

export function deleteLora(id: string) {
  return unwrap(client.DELETE("/api/loras/{lora_id}", { params: { path: { lora_id: id } } }));
}

export function importLora(file: File, characterId: string) {
  const form = new FormData();
  form.append("files", file, file.name);
  const query = { name: file.name.replace(/\.safetensors$/i, ""), character_id: characterId || undefined };
  return postFilesWithProgress("/api/loras/import", { query }, form, () => undefined).promise;
}
