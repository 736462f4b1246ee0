import { useQuery } from "@tanstack/react-query";
import { datasetQueries, type DatasetReport } from "../../features/dataset/api";
import { IdentityFindings } from "../../features/evaluation/IdentityFindings";
import { Card, ErrorNotice, Spinner } from "../ui";

type Level = "ok" | "warn" | "danger";

interface Check {
  level: Level;
  title: string;
  detail: string;
}

/** "b.png looks like a.png" for each near duplicate: the twin to compare it with, by name. */
export function twinsOf(report: DatasetReport): string[] {
  return report.near_duplicate_groups.flatMap((group) => group.slice(1).map((image) => `${image.original_name} looks like ${group[0].original_name}`));
}

export function checksFromReport(report: DatasetReport): Check[] {
  const count = report.count;
  const [fewest, most] = report.recommended_images;
  const range = `${fewest}-${most}`;
  const twins = twinsOf(report);
  const checks: Check[] = [
    {
      level: count >= fewest ? "ok" : count >= 4 ? "warn" : "danger",
      title: `${count} image${count === 1 ? "" : "s"}${count < fewest ? `, fewer than the ${range} that train well` : ""}`,
      detail: count >= fewest ? "Enough photos for a character LoRA." : `${range} varied photos give the best results.`,
    },
    {
      level: report.too_small.length ? "warn" : "ok",
      title: report.too_small.length ? `${report.too_small.length} smaller than ${report.resolution} px` : `All at least ${report.resolution} px`,
      detail: report.too_small.length ? "Small images are upscaled and look soft; replace them if you can." : "Resolution is fine.",
    },
    {
      level: report.blurry.length ? "warn" : "ok",
      title: report.blurry.length ? `${report.blurry.length} look blurry` : "No blurry images",
      detail: report.blurry.length ? "The LoRA learns blur too; remove or replace these." : "Sharpness looks good.",
    },
    {
      level: report.near_duplicate_groups.length ? "warn" : "ok",
      title: twins.length ? twins.join("; ") : "No near duplicates",
      detail: twins.length ? "Duplicates over-weight one pose; keep one of each." : "Variety looks good.",
    },
    {
      level: report.extreme_aspect.length ? "warn" : "ok",
      title: report.extreme_aspect.length ? `${report.extreme_aspect.length} with extreme aspect ratios` : "Aspect ratios are fine",
      detail: report.extreme_aspect.length ? "Very wide or tall images are heavily cropped." : "Nothing will be cropped badly.",
    },
    {
      level: report.missing_captions.length ? "warn" : "ok",
      title: report.missing_captions.length ? `${report.missing_captions.length} without a caption` : "Every image has a caption",
      detail: report.missing_captions.length ? "Uncaptioned images train on the trigger word alone; use the caption tools." : "Captions are ready.",
    },
  ];
  // The caption linter: an empty caption is the line above; a caption only long for CLIP is a note, not a fault.
  const toFix = new Set((report.caption_findings ?? []).filter((f) => f.kind !== "empty" && f.severity !== "info").map((f) => f.image_id));
  checks.push({
    level: toFix.size ? "warn" : "ok",
    title: toFix.size ? `${toFix.size} caption${toFix.size === 1 ? "" : "s"} to fix` : "Captions pass the caption check",
    detail: toFix.size
      ? "Placeholders, missing trigger word, identity traits, near-identical or over-long captions; see the notes under each caption."
      : "Trigger word present, no identity traits, varied, within the text encoders' length.",
  });
  return checks;
}

const ICON: Record<Level, string> = { ok: "✓", warn: "!", danger: "✕" };

export function useDatasetReport(characterId: string | null | undefined, resolution?: number) {
  return useQuery({ ...datasetQueries.report(characterId ?? "", resolution), enabled: !!characterId, placeholderData: (previous) => previous });
}

export function DatasetChecklist({ characterId, compact, resolution }: { characterId: string; compact?: boolean; resolution?: number }) {
  const { data, error, isPending } = useDatasetReport(characterId, resolution);
  const body = error ? (
    <ErrorNotice error={error} title="Could not check the dataset" />
  ) : isPending || !data ? (
    <Spinner label="Checking the dataset" />
  ) : data.count === 0 ? (
    // Nothing to check yet: no green ticks for an empty dataset.
    <div className="stack-sm" data-testid="dataset-checklist">
      <div><b>No images yet</b></div>
      <div className="small muted">Upload {data.recommended_images[0]}-{data.recommended_images[1]} varied photos of the character: faces, angles, light and clothes.</div>
    </div>
  ) : (
    <div className="stack">
      <ul className="checklist" data-testid="dataset-checklist">
        {checksFromReport(data).map((check) => (
          <li key={check.title}>
            <span className={`check-icon ${check.level}`} aria-label={check.level}>{ICON[check.level]}</span>
            <div>
              <div>{check.title}</div>
              {compact ? null : <div className="small faint">{check.detail}</div>}
            </div>
          </li>
        ))}
      </ul>
      <div className="small muted" data-testid="dataset-verdict">{data.verdict}</div>
      {compact ? null : <IdentityFindings characterId={characterId} />}
    </div>
  );
  return compact ? body : <Card title="Dataset check" description="Checked before training">{body}</Card>;
}
