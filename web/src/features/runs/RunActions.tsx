import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router-dom";
import { Button, ConfirmButton, ErrorNotice } from "../../components/ui";
import { isFinal, jobKeys, type Job } from "../jobs/api";
import { loraKeys } from "../loras/api";
import { settingsFileUrl } from "../training/api";
import { deleteRun, rerun } from "./api";

/** A run's settings as a YAML file that imports back into the form, and as an ai-toolkit job file. */
export function RunFileLinks({ job }: { job: Job }) {
  return (
    <>
      <a className="btn sm ghost" href={settingsFileUrl.run(job.id)} download title="The run's settings as a YAML file the form imports">Settings</a>
      <a className="btn sm ghost" href={settingsFileUrl.aiToolkit(job.id)} download title="The run as an ai-toolkit job file">ai-toolkit</a>
    </>
  );
}

/** Clone (the Start training form with this run's settings), rerun (the same settings at once), delete. */
export function RunActions({ job }: { job: Job }) {
  const client = useQueryClient();
  const navigate = useNavigate();
  const again = useMutation({
    mutationFn: () => rerun(job),
    onSuccess: (next) => {
      void client.invalidateQueries({ queryKey: jobKeys.all });
      navigate(`/training/${next.id}`);
    },
  });
  return (
    <div className="stack-sm">
      <div className="row" style={{ gap: 4, flexWrap: "nowrap" }}>
        <Link className="btn sm ghost" to={`/training/new?from=${job.id}`}>Clone</Link>
        <RunFileLinks job={job} />
        <Button size="sm" variant="ghost" onClick={() => again.mutate()} loading={again.isPending} disabled={!job.character_id}>Rerun</Button>
        <ConfirmButton
          size="sm"
          variant="ghost"
          title={`Delete ${job.name || "this run"}?`}
          description="Its history, samples, checkpoints and LoRAs are removed. Images generated with them stay in the gallery."
          confirmLabel="Delete run"
          disabled={!isFinal(job.status)}
          onConfirm={async () => {
            await deleteRun(job.id);
            void client.invalidateQueries({ queryKey: jobKeys.all });
            void client.invalidateQueries({ queryKey: loraKeys.all });
          }}
        >
          Delete
        </ConfirmButton>
      </div>
      {again.error ? <ErrorNotice error={again.error} title="Not started" /> : null}
    </div>
  );
}
