// The global job event stream (GET /api/events): status changes of every job keep the job lists fresh.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../lib/api";
import type { Job, JobPage } from "../lib/types";
import { keys } from "../lib/queries";
import { useSSE, type SSEState } from "./useSSE";

export type { Job, JobPage };

export const ACTIVE_STATUSES = ["running", "queued"] as const;

export function useActiveJobs(kind: "training" | "generation" | null = "training") {
  return useQuery({
    queryKey: keys.jobs({ kind, status: "active" }),
    // The list route filters by one status at a time: ask for each and show running before queued.
    queryFn: async ({ signal }): Promise<JobPage> => {
      const pages = await Promise.all(
        ACTIVE_STATUSES.map((status) => api.get<JobPage>("/api/jobs", { kind: kind ?? undefined, status, limit: 100 }, signal)),
      );
      const items = pages.flatMap((p) => p.items);
      return { items, total: items.length, limit: 200, offset: 0 };
    },
    refetchInterval: 15000,
  });
}

export function useActiveJobCount(): number {
  const { data } = useActiveJobs("training");
  return data?.items.length ?? 0;
}

/** Mounted once at the top: invalidates job queries when any job changes status. */
export function useGlobalJobEvents(): SSEState {
  const client = useQueryClient();
  const { state } = useSSE("/api/events", (message) => {
    const data = message.data as { job_id?: string; type?: string } | null;
    if (message.type === "status" || data?.type === "status" || message.type === "job") {
      void client.invalidateQueries({ queryKey: ["jobs"] });
      void client.invalidateQueries({ queryKey: ["loras"] });
      void client.invalidateQueries({ queryKey: ["generations"] });
    }
  });
  return state;
}
