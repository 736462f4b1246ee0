// Rules on the app's own source that the typecheck cannot state: every API call goes through the typed client
// (api/client.ts), and event or API data is narrowed from its generated type, never cast to a hand-picked one.
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = __dirname;
const GENERATED = new Set(["api/schema.d.ts"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

const RULES: { name: string; pattern: RegExp }[] = [
  // A call whose answer type is asserted by hand instead of following from the path.
  { name: "hand-typed API call", pattern: /\b(?:request|api\.(?:get|post|put|patch|del)|fetchJson)\s*</ },
  { name: "direct fetch of an API path", pattern: /\bfetch\(\s*[`"']\/api\/(?!logs\b)/ },
  // `d.step as number`, `m.data as ...`, `status as JobStatus`: a guess at data the schema already types.
  { name: "cast to a primitive", pattern: /\bas\s+(?:number|string|boolean)\b/ },
  { name: "cast of message or event data", pattern: /\.data\s+as\b|\bas\s+(?:Job\w*|(?:Status|Progress|Sample|Checkpoint|Log|Error|Artifact)Event)\b/ },
];

function violations(text: string, file: string): string[] {
  return text.split("\n").flatMap((line, index) =>
    RULES.filter((rule) => rule.pattern.test(line)).map((rule) => `${file}:${index + 1}: ${rule.name}: ${line.trim()}`),
  );
}

describe("source rules", () => {
  it("has no hand-typed API call and no cast of event or API data", () => {
    const found = sources(ROOT)
      .map((path) => [relative(ROOT, path), path] as const)
      .filter(([file]) => !GENERATED.has(file))
      .flatMap(([file, path]) => violations(readFileSync(path, "utf8"), file));
    expect(found).toEqual([]);
  });

  it("catches what it is meant to catch", () => {
    const bad = [
      'const job = await request<Job>("/api/jobs/1");',
      'api.get<JobPage>("/api/jobs")',
      "const step = d.step as number;",
      "setStatus(d.status as JobStatus);",
      "const data = message.data as { job_id?: string };",
      'fetch("/api/characters")',
    ];
    for (const line of bad) expect(violations(line, "x.ts"), line).toHaveLength(1);
    expect(violations("handle(type, event as MessageEvent);", "x.ts")).toEqual([]);
  });
});
