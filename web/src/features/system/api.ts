// The server's own state: health (database, Redis, workers) for the side panel and the pages that adapt to the mode.
import { queryOptions, useQuery } from "@tanstack/react-query";
import { client, unwrap } from "../../api/client";


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
