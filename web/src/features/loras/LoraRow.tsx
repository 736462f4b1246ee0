import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { Badge, Button, ConfirmButton, ErrorNotice } from "../../components/ui";
import { formatBytes, formatDate } from "../../lib/format";
import { deleteLora, loraKeys, renameLora, SOURCE_LABELS, type Lora } from "./api";

export function LoraRow({ lora, characterName }: { lora: Lora; characterName: string | null }) {
  const client = useQueryClient();
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(lora.name);
  const rename = useMutation({
    mutationFn: () => renameLora(lora.id, name.trim()),
    onSuccess: () => {
      setEditing(false);
      void client.invalidateQueries({ queryKey: loraKeys.all });
    },
  });
  const generateLink = `/generate?lora=${lora.id}${lora.character_id ? `&character=${lora.character_id}` : ""}`;
  return (
    <tr data-testid="lora-row">
      <td data-label="Name" className="cell-name">
        {editing ? (
          <form className="row nowrap" style={{ gap: 6 }} onSubmit={(e) => { e.preventDefault(); if (name.trim()) rename.mutate(); }}>
            <input className="input" aria-label="New name" value={name} autoFocus onChange={(e) => setName(e.target.value)} onKeyDown={(e) => e.key === "Escape" && setEditing(false)} />
            <Button size="sm" type="submit" loading={rename.isPending}>Save</Button>
          </form>
        ) : (
          <span className="stack-sm">
            <b>{lora.name}</b>
            <span className="small faint">{lora.trigger_word ? <>trigger <code>{lora.trigger_word}</code></> : null}</span>
          </span>
        )}
        {rename.error ? <ErrorNotice error={rename.error} title="Not renamed" /> : null}
      </td>
      <td data-label="Character">{characterName ?? <span className="faint">—</span>}</td>
      <td data-label="Base" className="small" title={lora.base_model || undefined}>{lora.base === "unknown" ? "unknown base" : lora.base}</td>
      <td data-label="Rank" className="mono small">{lora.rank ? `rank ${lora.rank}` : "—"}</td>
      <td data-label="Steps" className="mono small">{lora.step ? `${lora.step} steps` : "—"}</td>
      <td data-label="Size" className="mono small" data-testid="lora-size">{formatBytes(lora.bytes)}</td>
      <td data-label="Date" className="small muted" data-dynamic>{formatDate(lora.created_at)}</td>
      <td data-label="Source">
        <Badge tone={lora.source === "imported" ? "accent" : "ok"}>{SOURCE_LABELS[lora.source] ?? lora.source}</Badge>
        {lora.job_id ? <Link className="link small" style={{ marginLeft: 6 }} to={`/training/${lora.job_id}`}>run</Link> : null}
      </td>
      <td>
        <div className="row nowrap" style={{ gap: 4 }}>
          <Link className="btn sm primary" to={generateLink}>Use in Generate</Link>
          <a className="btn sm ghost" href={lora.url} download>Download</a>
          <Button size="sm" variant="ghost" onClick={() => { setName(lora.name); setEditing(true); }}>Rename</Button>
          <ConfirmButton size="sm" variant="ghost" title={`Delete ${lora.name}?`} description="The file is removed from this machine. Images made with it stay in the gallery."
            onConfirm={async () => { await deleteLora(lora.id); void client.invalidateQueries({ queryKey: loraKeys.all }); }}>
            Delete
          </ConfirmButton>
        </div>
      </td>
    </tr>
  );
}
