import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Button, ErrorNotice, Spinner } from "../../components/ui";
import { datasetKeys, deleteImage } from "../dataset/api";
import { evaluationQueries, type IdentityFinding } from "./api";

const TITLES: Record<IdentityFinding["kind"], string> = {
  someone_else: "Probably someone else",
  no_face: "No face",
  several_faces: "Several faces",
  near_copy: "Near-copy",
  unreadable: "Unreadable",
};

/** The face evaluator's findings on a character's photos, each with its image, distance and a one-click removal. */
export function IdentityFindings({ characterId }: { characterId: string }) {
  const client = useQueryClient();
  const { data, error, isPending } = useQuery(evaluationQueries.identity(characterId));
  const remove = useMutation({
    mutationFn: (imageId: string) => deleteImage(imageId),
    onSuccess: () => void client.invalidateQueries({ queryKey: datasetKeys.all }),
  });
  if (error) return <ErrorNotice error={error} title="Could not check who the photos show" />;
  if (isPending || !data) return <Spinner label="Checking who the photos show" />;
  if (data.status !== "available") return <div className="small muted" data-testid="identity-check">Identity check not available: {data.reason}</div>;
  return (
    <div className="stack-sm" data-testid="identity-check">
      <div>
        <b>{data.findings.length ? `${data.findings.length} identity finding${data.findings.length === 1 ? "" : "s"}` : "Every face looks like the same person"}</b>
        <span className="small faint"> · {data.faces_compared} faces compared by the {data.evaluator} evaluator</span>
      </div>
      {remove.error ? <ErrorNotice error={remove.error} title="Could not remove the image" /> : null}
      <ul className="checklist">
        {data.findings.map((finding) => (
          <li key={`${finding.kind}-${finding.image.id}`} data-testid="identity-finding" data-kind={finding.kind}>
            <img src={finding.image.thumbnail_url} alt={finding.image.original_name} width={56} height={56} style={{ objectFit: "cover", borderRadius: 6 }} />
            <div style={{ flex: 1, minWidth: 0 }}>
              <div>
                {TITLES[finding.kind]}: {finding.image.original_name}
                {finding.distance != null ? <span className="small faint"> · distance {finding.distance.toFixed(2)}</span> : null}
              </div>
              <div className="small faint">
                {finding.message}
                {finding.other_image ? ` (${finding.other_image.original_name})` : ""}
              </div>
            </div>
            <Button size="sm" onClick={() => remove.mutate(finding.image.id)} loading={remove.isPending && remove.variables === finding.image.id}>
              Remove
            </Button>
          </li>
        ))}
      </ul>
    </div>
  );
}
