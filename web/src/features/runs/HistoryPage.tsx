import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { StatusBadge } from "../../components/training/JobBits";
import { Card, Empty, ErrorNotice, Field, PageHeader, Pager, Spinner } from "../../components/ui";
import { formatDate, formatDuration, formatLoss } from "../../lib/format";
import { useCharacters } from "../characters/api";
import { isJobStatus, jobQueries, recordedProgress } from "../jobs/api";
import { RunActions } from "./RunActions";

const PAGE = 50;

export default function TrainingHistory() {
  const [params, setParams] = useSearchParams();
  const statusParam = params.get("status");
  const status = isJobStatus(statusParam) ? statusParam : null;
  const characterId = params.get("character");
  const [offset, setOffset] = useState(0);
  const [text, setText] = useState("");
  const navigate = useNavigate();
  const characters = useCharacters();
  const names = useMemo(() => new Map((characters.data ?? []).map((c) => [c.id, c.name])), [characters.data]);
  const { data, error, isPending, refetch } = useQuery(jobQueries.list({ kind: "training", status, character_id: characterId, offset, limit: PAGE }));
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    setOffset(0);
  };
  const rows = (data?.items ?? []).filter((j) => !text || `${j.name} ${j.id}`.toLowerCase().includes(text.toLowerCase()));
  return (
    <div className="page">
      <PageHeader title="Training history" description="Every run, with how it ended, how long it took and its final loss." />
      <div className="card">
        <div className="form-grid">
          <Field label="Search" htmlFor="history-search"><input id="history-search" className="input" value={text} onChange={(e) => setText(e.target.value)} placeholder="Name or id" /></Field>
          <Field label="Status" htmlFor="history-status">
            <select id="history-status" className="select" value={status ?? ""} onChange={(e) => set("status", e.target.value)}>
              <option value="">Any</option>
              {["succeeded", "failed", "cancelled", "running", "queued"].map((s) => <option key={s} value={s}>{s}</option>)}
            </select>
          </Field>
          <Field label="Character" htmlFor="history-character">
            <select id="history-character" className="select" value={characterId ?? ""} onChange={(e) => set("character", e.target.value)}>
              <option value="">All</option>
              {characters.data?.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
            </select>
          </Field>
        </div>
      </div>
      {error ? <ErrorNotice error={error} title="Could not load the history" onRetry={() => void refetch()} /> : null}
      {isPending ? <Spinner /> : rows.length === 0 ? (
        <Empty icon="☰" title="No runs match">Start a run from a character's page or from Start training.</Empty>
      ) : (
        <Card flush>
          <div className="table-wrap">
            <table className="table" data-testid="history-table">
              <thead><tr><th>#</th><th>Run</th><th>Character</th><th>Status</th><th>Settings</th><th>Started</th><th>Duration</th><th>Attempts</th><th>Final loss</th><th /></tr></thead>
              <tbody>
                {rows.map((job) => {
                  const progress = recordedProgress(job);
                  const config = job.config ?? {};
                  return (
                    <tr key={job.id} className="clickable" onClick={() => navigate(`/training/${job.id}`)}>
                      <td className="mono" data-testid="history-run-number">{job.run_number ?? "—"}</td>
                      <td><a className="link" href={`/training/${job.id}`} onClick={(e) => { e.preventDefault(); navigate(`/training/${job.id}`); }}>{job.name || job.id.slice(0, 8)}</a></td>
                      <td className="muted">{job.character_id ? names.get(job.character_id) ?? "—" : "—"}</td>
                      <td><StatusBadge status={job.status} /></td>
                      <td className="small muted">{[config.steps != null ? `${String(config.steps)} steps` : "", config.rank != null ? `rank ${String(config.rank)}` : ""].filter(Boolean).join(" · ") || "—"}</td>
                      <td className="muted" data-dynamic>{formatDate(job.started_at ?? job.created_at)}</td>
                      <td data-dynamic>{formatDuration(job.duration_seconds)}</td>
                      <td className="mono" data-testid="history-attempts" title="Attempts: more than one when a worker was lost and the run resumed">{job.attempts}</td>
                      <td className="mono" data-dynamic>{formatLoss(progress.smoothedLoss ?? progress.loss)}</td>
                      <td onClick={(e) => e.stopPropagation()}><RunActions job={job} /></td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </Card>
      )}
      {data ? <Pager offset={offset} size={PAGE} total={data.total} onOffset={setOffset} /> : null}
    </div>
  );
}
