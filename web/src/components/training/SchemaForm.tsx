// A form rendered from a plugin's config JSON schema (pydantic's): numbers, integers, strings, enums, booleans
// and lists of strings or numbers. Field descriptions become hints; bounds become input limits.
import { type ReactNode, useEffect, useState } from "react";
import { Field } from "../ui";

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  properties?: Record<string, JsonSchema>;
  $defs?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
  required?: string[];
}

export function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop() ?? "";
    const target = root.$defs?.[name] ?? root.definitions?.[name];
    return target ? { ...resolve(target, root), ...schema, $ref: undefined } : schema;
  }
  if (schema.allOf?.length === 1) return { ...resolve(schema.allOf[0], root), ...schema, allOf: undefined };
  if (schema.anyOf) {
    const nonNull = schema.anyOf.filter((s) => s.type !== "null");
    if (nonNull.length === 1) return { ...resolve(nonNull[0], root), description: schema.description, default: schema.default, title: schema.title };
  }
  return schema;
}

export function defaultsOf(root: JsonSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(root.properties ?? {})) {
    const resolved = resolve(prop, root);
    if (resolved.default !== undefined) out[key] = resolved.default;
  }
  return out;
}

const label = (key: string, schema: JsonSchema) => schema.title ?? key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

function Input({ name, schema, value, onChange }: { name: string; schema: JsonSchema; value: unknown; onChange: (v: unknown) => void }): ReactNode {
  const id = `cfg-${name}`;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (schema.enum) {
    return (
      <select id={id} className="select" value={String(value ?? "")} onChange={(e) => onChange(e.target.value)}>
        {schema.enum.map((option) => <option key={String(option)} value={String(option)}>{String(option)}</option>)}
      </select>
    );
  }
  if (type === "boolean") {
    return (
      <label className="checkbox-row">
        <input id={id} type="checkbox" checked={!!value} onChange={(e) => onChange(e.target.checked)} />
        <span className="small muted">{value ? "On" : "Off"}</span>
      </label>
    );
  }
  if (type === "integer" || type === "number") {
    return (
      <input
        id={id}
        className="input mono"
        type="number"
        step={type === "integer" ? 1 : "any"}
        min={schema.minimum ?? schema.exclusiveMinimum}
        max={schema.maximum ?? schema.exclusiveMaximum}
        value={value === undefined || value === null ? "" : String(value)}
        onChange={(e) => onChange(e.target.value === "" ? null : type === "integer" ? Math.round(Number(e.target.value)) : Number(e.target.value))}
      />
    );
  }
  if (type === "array") {
    const list = Array.isArray(value) ? value : [];
    if (schema.items?.type !== "string") return <NumberListInput id={id} list={list} onChange={onChange} />;
    return (
      <textarea
        id={id}
        className="textarea mono"
        rows={Math.min(5, Math.max(2, list.length))}
        value={list.join("\n")}
        onChange={(e) => onChange(e.target.value.split("\n"))}
      />
    );
  }
  return <input id={id} className="input" value={String(value ?? "")} onChange={(e) => onChange(e.target.value)} />;
}

export function SchemaFields({ root, keys, values, onChange, errors }: {
  root: JsonSchema;
  keys: string[];
  values: Record<string, unknown>;
  onChange: (key: string, value: unknown) => void;
  errors?: Record<string, string>;
}) {
  return (
    <div className="form-grid">
      {keys.map((key) => {
        const schema = resolve(root.properties![key], root);
        const wide = schema.type === "array" && schema.items?.type === "string";
        return (
          <div key={key} style={wide ? { gridColumn: "1 / -1" } : undefined}>
            <Field label={label(key, schema)} htmlFor={`cfg-${key}`} hint={schema.description} error={errors?.[key]}>
              <Input name={key} schema={schema} value={values[key]} onChange={(v) => onChange(key, v)} />
            </Field>
          </div>
        );
      })}
    </div>
  );
}

export const parseNumberList = (text: string): number[] => text.split(/[\s,]+/).filter(Boolean).map(Number);

/** A list of numbers typed as text ("64, 128"): the field keeps what is typed, separators included, and hands the
 * parsed numbers on; a change from outside (reset to defaults, a preset) replaces the text. */
function NumberListInput({ id, list, onChange }: { id: string; list: unknown[]; onChange: (value: unknown) => void }) {
  const [text, setText] = useState(() => list.join(", "));
  const shown = JSON.stringify(parseNumberList(text));
  const given = JSON.stringify(list);
  // Only a change of the value from outside rewrites the text: what is being typed parses to the value already.
  useEffect(() => {
    if (shown !== given) setText((JSON.parse(given) as unknown[]).join(", "));
  }, [given]);
  return (
    <textarea
      id={id}
      className="textarea mono"
      rows={1}
      value={text}
      onChange={(e) => {
        setText(e.target.value);
        onChange(parseNumberList(e.target.value));
      }}
    />
  );
}
