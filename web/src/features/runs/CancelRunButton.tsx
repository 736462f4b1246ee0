import { useQueryClient } from "@tanstack/react-query";
import { ConfirmButton } from "../../components/ui";
import { cancelJob, jobKeys, type Job } from "../jobs/api";

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
        await cancelJob(job.id);
        void client.invalidateQueries({ queryKey: jobKeys.detail(job.id) });
        void client.invalidateQueries({ queryKey: jobKeys.all });
      }}
    >
      {job.cancel_requested ? "Cancelling…" : label}
    </ConfirmButton>
  );
}
