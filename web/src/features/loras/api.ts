// The LoRA library: trained and imported LoRAs.
import { queryOptions } from "@tanstack/react-query";
import { client, unwrap, type paths, type Schemas } from "../../api/client";

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
