import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { characterKeys } from "../../features/characters/api";
import { datasetKeys, refusedUploadResults, uploadImages, type UploadFileResult } from "../../features/dataset/api";
import { errorMessage } from "../../lib/api-errors";
import { formatBytes } from "../../lib/format";
import { Badge, Button, ProgressBar } from "../ui";

interface Item {
  key: string;
  files: File[];
  label: string;
  size: number;
  loaded: number;
  state: "waiting" | "uploading" | "done" | "failed";
  error?: string;
  results: UploadFileResult[];
}

// One request at a time: each upload is checked against the images stored before it (near duplicates), which
// two requests in flight together cannot see of each other. The server's work per file is the slow part anyway.
const CONCURRENCY = 1;

const stem = (name: string) => name.replace(/\.[^.]*$/, "").toLowerCase();
const isCaption = (file: File) => /\.txt$/i.test(file.name);

/** The API pairs a caption file with an image only within one request: each image travels with its same-named .txt. */
export function pairUploads(files: File[]): File[][] {
  const captions = new Map<string, File>();
  for (const file of files) if (isCaption(file)) captions.set(stem(file.name), file);
  const groups: File[][] = [];
  for (const file of files) {
    if (isCaption(file)) continue;
    const caption = captions.get(stem(file.name));
    if (caption && !/\.zip$/i.test(file.name)) captions.delete(stem(file.name));
    groups.push(caption && !/\.zip$/i.test(file.name) ? [file, caption] : [file]);
  }
  for (const caption of captions.values()) groups.push([caption]);
  return groups;
}

function ResultLine({ result }: { result: UploadFileResult }) {
  const tone = result.status === "stored" ? "ok" : result.status === "duplicate" ? "warn" : "danger";
  return (
    <div className="row small" data-testid="upload-result">
      <Badge tone={tone}>{result.status}</Badge>
      <span className="muted" style={{ overflow: "hidden", textOverflow: "ellipsis" }}>{result.name}</span>
      {result.reason ? <span className="small" style={{ color: tone === "danger" ? "var(--danger)" : "var(--warn)" }}>{result.reason}</span> : null}
    </div>
  );
}

/** Drag-and-drop (or pick) many images and zips; each file (an image with its caption) is its own request, so each
 * has its progress and result; refusals are gathered above the list, where they are seen without scrolling. */
export function Uploader({ characterId }: { characterId: string }) {
  const client = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [items, setItems] = useState<Item[]>([]);
  const [dragging, setDragging] = useState(false);

  const update = (key: string, patch: Partial<Item>) => setItems((list) => list.map((it) => (it.key === key ? { ...it, ...patch } : it)));

  async function uploadOne(item: Item) {
    update(item.key, { state: "uploading" });
    const form = new FormData();
    for (const file of item.files) form.append("files", file, file.name);
    const { promise } = uploadImages(characterId, form, ({ loaded }) => update(item.key, { loaded }));
    try {
      const out = await promise;
      update(item.key, { state: "done", loaded: item.size, results: out.results });
    } catch (error) {
      // Every file refused is a 422 that still carries the per-file results with their reasons.
      const results = refusedUploadResults(error);
      update(item.key, { state: "failed", error: results.length ? undefined : errorMessage(error), results });
    }
  }

  async function addFiles(files: FileList | File[]) {
    const added: Item[] = pairUploads(Array.from(files)).map((group, i) => ({
      key: `${Date.now()}-${i}-${group[0].name}`,
      files: group,
      label: group.map((f) => f.name).join(" + "),
      size: group.reduce((total, f) => total + f.size, 0),
      loaded: 0,
      state: "waiting",
      results: [],
    }));
    if (!added.length) return;
    setItems((list) => [...added, ...list]);
    const queue = [...added];
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await uploadOne(next);
    });
    await Promise.all(workers);
    void client.invalidateQueries({ queryKey: datasetKeys.all });
    void client.invalidateQueries({ queryKey: characterKeys.all });
  }

  const finished = items.filter((i) => i.state === "done" || i.state === "failed");
  const results = finished.flatMap((i) => i.results);
  const refused = results.filter((r) => r.status === "rejected");
  const duplicates = results.filter((r) => r.status === "duplicate").length;
  const failedRequests = finished.filter((i) => i.error).length;
  const pending = items.length - finished.length;
  const summary = [
    `${results.filter((r) => r.status === "stored").length} stored`,
    duplicates ? `${duplicates} duplicate${duplicates === 1 ? "" : "s"}` : "",
    `${refused.length + failedRequests} refused`,
    pending ? `${pending} uploading` : "",
  ].filter(Boolean).join(", ");
  return (
    <div className="stack">
      <div
        className={`dropzone${dragging ? " active" : ""}`}
        role="button"
        tabIndex={0}
        data-testid="dropzone"
        aria-label="Upload images: drop files here or press Enter to choose"
        onClick={() => input.current?.click()}
        onKeyDown={(e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            input.current?.click();
          }
        }}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void addFiles(e.dataTransfer.files);
        }}
      >
        <div style={{ fontSize: 26 }} aria-hidden>⇪</div>
        <div><b>Drop photos or zips here</b>, or click to choose</div>
        <div className="small faint">JPEG, PNG, WebP; zips may hold same-named .txt captions</div>
        <input
          ref={input}
          type="file"
          multiple
          accept="image/jpeg,image/png,image/webp,image/heic,image/heif,.heic,.heif,.zip,.txt"
          hidden
          data-testid="file-input"
          onChange={(e) => {
            if (e.target.files) void addFiles(e.target.files);
            e.target.value = "";
          }}
        />
      </div>
      {items.length ? (
        <div className="stack-sm">
          <div className="row between small muted">
            <span data-testid="upload-summary" aria-live="polite">{summary}</span>
            <Button size="sm" variant="ghost" onClick={() => setItems((l) => l.filter((i) => i.state === "uploading" || i.state === "waiting"))}>Clear finished</Button>
          </div>
          {refused.length ? (
            <div className="stack-sm upload-refused" data-testid="upload-refused">
              {refused.map((r, i) => <ResultLine key={i} result={r} />)}
            </div>
          ) : null}
          <div className="upload-list" data-testid="upload-list">
            {items.map((item) => (
              <div key={item.key} className="stack-sm" data-testid="upload-item">
                <div className="upload-item">
                  <span className="name" title={item.label}>{item.label} <span className="faint small">{formatBytes(item.size)}</span></span>
                  <ProgressBar value={item.loaded} max={item.size || 1} tone={item.state === "failed" ? "danger" : item.state === "done" ? "ok" : undefined} label={`upload of ${item.label}`} />
                  <span className="small">
                    {item.state === "waiting" ? <span className="faint">waiting</span> : item.state === "uploading" ? <span className="muted">uploading</span> : item.state === "failed" ? <Badge tone="danger">failed</Badge> : <Badge tone="ok">done</Badge>}
                  </span>
                </div>
                {item.error ? <div className="small" style={{ color: "var(--danger)", paddingLeft: 10 }} data-testid="upload-error">{item.error}</div> : null}
                {item.results.some((r) => r.status === "duplicate") ? (
                  <div className="stack-sm" style={{ paddingLeft: 10 }}>{item.results.filter((r) => r.status === "duplicate").map((r, i) => <ResultLine key={i} result={r} />)}</div>
                ) : null}
              </div>
            ))}
          </div>
        </div>
      ) : null}
    </div>
  );
}
