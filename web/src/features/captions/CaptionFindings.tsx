// Beside each caption: what the linter found (with its one-click fix) and "regenerate caption".
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Badge, Button } from "../../components/ui";
import { datasetKeys, type ImageOut } from "../dataset/api";
import { applyFix, DEFAULT_PLUGIN, DEFAULT_STYLE, REGENERATE_TEMPERATURE, findingsByImage, useCaptionLanguage, useCaptionLint, type CaptionFinding } from "./api";
import { isFinal, useCaptionJob } from "./useCaptionJob";

const TONE: Record<CaptionFinding["severity"], "danger" | "warn" | "info"> = { error: "danger", warning: "warn", info: "info" };
const LABEL: Record<CaptionFinding["kind"], string> = {
  empty: "No caption",
  placeholder: "Placeholder",
  missing_trigger: "No trigger word",
  identity: "Describes identity",
  near_identical: "Near-identical",
  too_long_t5: "Too long (T5)",
  too_long_clip: "Long for CLIP",
};

function Finding({ finding }: { finding: CaptionFinding }) {
  const client = useQueryClient();
  const [fixing, setFixing] = useState(false);
  const fixed = finding.fixed_caption;
  return (
    <li className="stack-sm" data-testid="caption-finding" data-kind={finding.kind}>
      <div className="row" style={{ gap: 6 }}>
        <Badge tone={TONE[finding.severity]} title={finding.message}>{LABEL[finding.kind]}</Badge>
        {finding.words?.length ? <span className="small faint">{finding.words.slice(0, 6).join(", ")}</span> : null}
        {fixed != null ? (
          <Button
            size="sm"
            variant="ghost"
            loading={fixing}
            title={`Change the caption to: ${fixed}`}
            onClick={async () => {
              setFixing(true);
              try {
                await applyFix(finding);
                await client.invalidateQueries({ queryKey: datasetKeys.all });
              } finally {
                setFixing(false);
              }
            }}
          >
            Fix
          </Button>
        ) : null}
      </div>
      <span className="small muted">{finding.message}</span>
    </li>
  );
}

/** The findings of one image's caption and its "Regenerate caption" button. */
export function CaptionFindings({ image }: { image: ImageOut }) {
  const [language] = useCaptionLanguage(image.character_id);
  const lint = useCaptionLint(image.character_id, language);
  const regenerate = useCaptionJob(image.character_id);
  const [error, setError] = useState<string | null>(null);
  const findings = (lint.data ? findingsByImage(lint.data.findings).get(image.id) : undefined) ?? [];
  const busy = regenerate.running || (regenerate.progress !== null && !isFinal(regenerate.progress.status));
  return (
    <div className="stack-sm" data-testid="caption-findings">
      {findings.length ? <ul className="stack-sm" style={{ listStyle: "none", padding: 0, margin: 0 }}>{findings.map((f, i) => <Finding key={`${f.kind}-${i}`} finding={f} />)}</ul> : null}
      <div className="row" style={{ gap: 6 }}>
        <Button
          size="sm"
          variant="ghost"
          loading={busy}
          aria-label={`Regenerate the AI caption for ${image.original_name}`}
          onClick={async () => {
            setError(null);
            try {
              await regenerate.start({ plugin: DEFAULT_PLUGIN, scope: "selected", image_ids: [image.id], overwrite: true, style: { ...DEFAULT_STYLE, language }, config: { temperature: REGENERATE_TEMPERATURE } });
            } catch (e) {
              setError(e instanceof Error ? e.message : String(e));
            }
          }}
        >
          ↻ Regenerate caption
        </Button>
        {regenerate.progress?.status === "failed" ? <span className="small" style={{ color: "var(--danger)" }}>{regenerate.progress.message}</span> : null}
        {error ? <span className="small" style={{ color: "var(--danger)" }}>{error}</span> : null}
      </div>
    </div>
  );
}
