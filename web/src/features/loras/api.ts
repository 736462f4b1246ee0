// The LoRA library's reads and writes.
import { useQuery } from "@tanstack/react-query";
import { api, uploadWithProgress } from "../../lib/api";
import type { Lora, LoraPage } from "../../lib/types";

export const SOURCE_LABELS: Record<string, string> = { trained: "trained here", checkpoint: "checkpoint", imported: "imported" };

export function useLibrary(filters: { characterId: string; source: string }) {
  return useQuery({
    queryKey: ["loras", "library", filters],
    queryFn: ({ signal }) =>
      api.get<LoraPage>("/api/loras", { character_id: filters.characterId || undefined, source: filters.source || undefined, limit: 200 }, signal),
  });
}

export const renameLora = (id: string, name: string) => api.patch<Lora>(`/api/loras/${id}`, { name });
export const deleteLora = (id: string) => api.del(`/api/loras/${id}`);

export function importLora(file: File, characterId: string) {
  const form = new FormData();
  form.append("files", file, file.name);
  const query = new URLSearchParams({ name: file.name.replace(/\.safetensors$/i, "") });
  if (characterId) query.set("character_id", characterId);
  return uploadWithProgress<Lora>(`/api/loras/import?${query.toString()}`, form, () => undefined).promise;
}
