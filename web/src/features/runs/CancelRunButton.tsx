import { useQueryClient } from "@tanstack/react-query";
import { ConfirmButton } from "../../components/ui";
import { keys } from "../../lib/queries";
import type { Job } from "../../lib/types";
import { cancelRun } from "./api";

/** Cancelling asks first: hours of training may be behind the button. */
export function CancelRunButton({ job, size = "md", label = "Cancel run" }: { job: Job; size?: "sm" | "md"; label?: string }) {
  const client = useQueryClient();
  return (
    <ConfirmButton
      size={size}
      title="Cancel this run?"
      description="Training stops at the next step. Checkpoints saved so far are kept: the run can resume from the last one."
      confirmLabel="Cancel run"
      cancelLabel="Keep training"
      disabled={job.cancel_requested}
      onConfirm={async () => {
        await cancelRun(job.id);
        void client.invalidateQueries({ queryKey: keys.job(job.id) });
        void client.invalidateQueries({ queryKey: ["jobs"] });
      }}
    >
      {job.cancel_requested ? "Cancelling…" : label}
    </ConfirmButton>
  );
}
