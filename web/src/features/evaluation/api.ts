// Quality scores: a run's identity / adherence / copying per checkpoint, its recommendation, and the dataset's
// identity check.
import { queryOptions } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";

export type RunEvaluation = Schemas["RunEvaluation"];
export type CheckpointScores = Schemas["CheckpointScoresOut"];
export type SampleScore = Schemas["SampleScoreOut"];
export type DatasetIdentityReport = Schemas["DatasetIdentityReport"];
export type IdentityFinding = Schemas["IdentityFindingOut"];

export const evaluationKeys = {
  run: (jobId: string) => ["evaluation", "run", jobId] as const,
  identity: (characterId: string) => ["images", "identity", characterId] as const,
};

export const evaluationQueries = {
  /** GET /api/jobs/{id}/evaluation; while the run goes on, new samples are scored: poll. */
  run: (jobId: string, live: boolean) =>
    queryOptions({
      queryKey: evaluationKeys.run(jobId),
      queryFn: ({ signal }) => unwrap(client.GET("/api/jobs/{job_id}/evaluation", { params: { path: { job_id: jobId } }, signal })),
      refetchInterval: live ? 5000 : false,
    }),
  /** The face evaluator's findings on a character's photos (slow the first time: each photo is embedded once). */
  identity: (characterId: string) =>
    queryOptions({
      queryKey: evaluationKeys.identity(characterId),
      queryFn: ({ signal }) =>
        unwrap(client.GET("/api/characters/{character_id}/dataset/identity", { params: { path: { character_id: characterId } }, signal })),
      staleTime: 30_000,
    }),
};

/** "0.734" or "—". */
export function formatScore(value: number | null | undefined): string {
  return value == null || !Number.isFinite(value) ? "—" : value.toFixed(3);
}

/** Each sample's scores by its artifact id, for the samples grid. */
export function scoresByArtifact(evaluation: RunEvaluation | undefined): Map<string, SampleScore> {
  return new Map((evaluation?.samples ?? []).flatMap((s) => (s.artifact_id ? [[s.artifact_id, s] as const] : [])));
}
