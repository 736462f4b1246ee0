// "Caption with AI": caption a character's dataset (all, empty or selected images) with a style, and follow it live.
import { useState } from "react";
import { Alert, Badge, Button, ErrorNotice, Field, ProgressBar, Switch } from "../../components/ui";
import {
  CAPTION_LANGUAGES,
  DEFAULT_PLUGIN,
  DEFAULT_STYLE,
  useCaptionLanguage,
  useCaptionPlugins,
  type CaptionLanguage,
  type CaptionScope,
  type CaptionStyle,
} from "./api";
import { isFinal, useCaptionJob } from "./useCaptionJob";

const SCOPE_LABELS: Record<CaptionScope, string> = {
  empty: "Images without a caption",
  all: "All images",
  selected: "Selected images",
};

export function CaptionWithAI({ characterId, selected }: { characterId: string; selected: string[] }) {
  const plugins = useCaptionPlugins();
  const job = useCaptionJob(characterId);
  const [scope, setScope] = useState<CaptionScope>("empty");
  const [overwrite, setOverwrite] = useState(false);
  const [style, setStyle] = useState<CaptionStyle>(DEFAULT_STYLE);
  const [language, setLanguage] = useCaptionLanguage(characterId);
  const [plugin, setPlugin] = useState(DEFAULT_PLUGIN);
  const [error, setError] = useState<unknown>(null);
  const [submitting, setSubmitting] = useState(false);
  const patch = (change: Partial<CaptionStyle>) => setStyle((s) => ({ ...s, ...change }));
  const chosen = plugins.data?.find((p) => p.name === plugin);
  const progress = job.progress;

  const submit = async () => {
    setError(null);
    setSubmitting(true);
    try {
      await job.start({ plugin, scope, overwrite: scope !== "empty" && overwrite, style: { ...style, language }, image_ids: scope === "selected" ? selected : [] });
    } catch (e) {
      setError(e);
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <form
      className="stack"
      data-testid="caption-with-ai"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      {(plugins.data?.length ?? 0) > 1 ? (
        <Field label="Captioner" htmlFor="ai-caption-plugin">
          <select id="ai-caption-plugin" className="select" value={plugin} onChange={(e) => setPlugin(e.target.value)}>
            {plugins.data?.map((p) => <option key={p.name} value={p.name}>{p.name}</option>)}
          </select>
        </Field>
      ) : null}
      {chosen && !chosen.capability.available ? (
        <Alert tone="warn" title="This captioner cannot run here">{chosen.capability.reason}</Alert>
      ) : null}
      <Field label="Caption" htmlFor="ai-caption-scope">
        <select id="ai-caption-scope" className="select" value={scope} onChange={(e) => setScope(e.target.value as CaptionScope)}>
          {(Object.keys(SCOPE_LABELS) as CaptionScope[]).map((value) => (
            <option key={value} value={value} disabled={value === "selected" && !selected.length}>
              {SCOPE_LABELS[value]}{value === "selected" ? ` (${selected.length})` : ""}
            </option>
          ))}
        </select>
      </Field>
      {scope !== "empty" ? (
        <Switch checked={overwrite} onChange={setOverwrite} label="Replace existing captions" />
      ) : null}
      <div className="grid-2">
        <Field label="Trigger word" htmlFor="ai-caption-trigger">
          <select
            id="ai-caption-trigger"
            className="select"
            value={style.trigger_placement}
            onChange={(e) => patch({ trigger_placement: e.target.value as CaptionStyle["trigger_placement"] })}
          >
            <option value="first">First: [trigger], …</option>
            <option value="replace_subject">In place of "a woman" / "a man"</option>
          </select>
        </Field>
        <Field label="Language" htmlFor="ai-caption-language">
          <select id="ai-caption-language" className="select" value={language} onChange={(e) => setLanguage(e.target.value as CaptionLanguage)}>
            {Object.entries(CAPTION_LANGUAGES).map(([value, name]) => (
              <option key={value} value={value}>{name}</option>
            ))}
          </select>
        </Field>
        <Field label="Max words" htmlFor="ai-caption-words">
          <input id="ai-caption-words" className="input" type="number" min={5} max={300} value={style.max_words}
            onChange={(e) => patch({ max_words: Number(e.target.value) })} />
        </Field>
        <Field label="Prefix" htmlFor="ai-caption-prefix">
          <input id="ai-caption-prefix" className="input" value={style.prefix} placeholder="e.g. photo of" onChange={(e) => patch({ prefix: e.target.value })} />
        </Field>
        <Field label="Suffix" htmlFor="ai-caption-suffix">
          <input id="ai-caption-suffix" className="input" value={style.suffix} onChange={(e) => patch({ suffix: e.target.value })} />
        </Field>
      </div>
      <Switch
        checked={!!style.leave_identity_out}
        onChange={(value) => patch({ leave_identity_out: value })}
        label="Leave identity out (hair, eyes, skin, age, body)"
      />
      <div className="row between">
        <span className="small muted">Runs on a worker; captions appear as each image is done.</span>
        <Button type="submit" size="sm" variant="primary" loading={submitting} disabled={job.running}>Caption with AI</Button>
      </div>
      {error ? <ErrorNotice error={error} title="Captioning not started" /> : null}
      {progress ? (
        <div className="stack-sm" data-testid="caption-progress" aria-live="polite">
          <div className="row between small">
            <span>{progress.done} / {progress.total} images</span>
            <Badge tone={progress.status === "succeeded" ? "ok" : progress.status === "failed" ? "danger" : "info"}>{progress.status}</Badge>
          </div>
          <ProgressBar value={progress.done} max={progress.total || 1} label="captioning progress" tone={progress.status === "failed" ? "danger" : undefined} />
          {progress.last ? (
            <span className="small faint" title={progress.last.caption}
              style={{ display: "block", overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
              Last: {progress.last.caption}
            </span>
          ) : null}
          {isFinal(progress.status) ? (
            <span className="small muted">
              {progress.written} captioned{progress.kept ? `, ${progress.kept} kept (edited meanwhile)` : ""}
              {progress.message && progress.status !== "succeeded" ? ` — ${progress.message}` : ""}
            </span>
          ) : (
            <Button type="button" size="sm" variant="ghost" onClick={() => void job.cancel()}>Cancel</Button>
          )}
        </div>
      ) : null}
    </form>
  );
}
