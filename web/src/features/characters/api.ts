// Characters: the list, one character, and creating, editing and deleting them.
import { queryOptions, useQuery } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";

export type Character = Schemas["CharacterOut"];
export type CharacterCreate = Schemas["CharacterCreate"];
export type CharacterUpdate = Schemas["CharacterUpdate"];

export const characterKeys = {
  all: ["characters"] as const,
  detail: (id: string) => ["characters", id] as const,
};

export const characterQueries = {
  list: () =>
    queryOptions({
      queryKey: characterKeys.all,
      queryFn: ({ signal }) => unwrap(client.GET("/api/characters", { signal })),
    }),
  detail: (id: string) =>
    queryOptions({
      queryKey: characterKeys.detail(id),
      queryFn: ({ signal }) => unwrap(client.GET("/api/characters/{character_id}", { params: { path: { character_id: id } }, signal })),
    }),
};

export function useCharacters() {
  return useQuery(characterQueries.list());
}

export function createCharacter(body: CharacterCreate) {
  return unwrap(client.POST("/api/characters", { body }));
}

export function updateCharacter(id: string, body: CharacterUpdate) {
  return unwrap(client.PATCH("/api/characters/{character_id}", { params: { path: { character_id: id } }, body }));
}

export function deleteCharacter(id: string) {
  return unwrap(client.DELETE("/api/characters/{character_id}", { params: { path: { character_id: id } } }));
}
