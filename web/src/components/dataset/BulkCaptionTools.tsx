import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { bulkCaptions, datasetKeys, type BulkCaptionAction } from "../../features/dataset/api";
import { Alert, Button, ErrorNotice, Field } from "../ui";

type Action = BulkCaptionAction["action"];

export function BulkCaptionTools({ characterId, selected, triggerWord }: { characterId: string; selected: string[]; triggerWord: string }) {
  const client = useQueryClient();
  const [action, setAction] = useState<Action>("prepend_trigger");
  const [caption, setCaption] = useState(`a photo of ${triggerWord}`);
  const [find, setFind] = useState("");
  const [replace, setReplace] = useState("");
  const apply = useMutation({
    mutationFn: () => {
      const image_ids = selected.length ? selected : null;
      const body =
        action === "prepend_trigger"
          ? { action, image_ids }
          : action === "set_missing"
            ? { action, caption, image_ids }
            : { action, find, replace, case_sensitive: false, image_ids };
      return bulkCaptions(characterId, body);
    },
    onSuccess: () => void client.invalidateQueries({ queryKey: datasetKeys.all }),
  });
  return (
    <form
      className="stack"
      onSubmit={(e) => {
        e.preventDefault();
        apply.mutate();
      }}
    >
      <Field label="Action" htmlFor="bulk-action">
        <select id="bulk-action" className="select" value={action} onChange={(e) => setAction(e.target.value as Action)}>
          <option value="prepend_trigger">Put the trigger word first</option>
          <option value="set_missing">Fill empty captions</option>
          <option value="find_replace">Find and replace</option>
        </select>
      </Field>
      {action === "set_missing" ? (
        <Field label="Caption for images without one" htmlFor="bulk-caption">
          <input id="bulk-caption" className="input" value={caption} onChange={(e) => setCaption(e.target.value)} />
        </Field>
      ) : null}
      {action === "find_replace" ? (
        <div className="grid-2">
          <Field label="Find" htmlFor="bulk-find"><input id="bulk-find" className="input" value={find} onChange={(e) => setFind(e.target.value)} required /></Field>
          <Field label="Replace with" htmlFor="bulk-replace"><input id="bulk-replace" className="input" value={replace} onChange={(e) => setReplace(e.target.value)} /></Field>
        </div>
      ) : null}
      <div className="row between">
        <span className="small muted">Applies to {selected.length ? `${selected.length} selected` : "all"} images</span>
        <Button type="submit" size="sm" variant="primary" loading={apply.isPending}>Apply</Button>
      </div>
      {apply.error ? <ErrorNotice error={apply.error} title="Captions not changed" /> : null}
      {apply.data ? <Alert tone="ok" title={`${apply.data.updated} caption${apply.data.updated === 1 ? "" : "s"} updated`} /> : null}
    </form>
  );
}
