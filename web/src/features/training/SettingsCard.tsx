import { type JsonSchema, SchemaFields } from "../../components/training/SchemaForm";
import { Button, Card } from "../../components/ui";
import type { TrainingPlugin } from "./api";

// The knobs most runs touch; everything else sits in the advanced section.
// The base is chosen with the engine (BaseField), not among the knobs.
const CHOSEN_ELSEWHERE = ["base"];
const BASIC = ["steps", "learning_rate", "rank", "alpha", "batch_size", "resolutions", "sample_every", "checkpoint_every", "sample_prompts"];

export function SettingsCard({ plugin, schema, values, setValues, errors, onReset }: {
  plugin: TrainingPlugin | undefined;
  schema: JsonSchema;
  values: Record<string, unknown>;
  setValues: (update: (prev: Record<string, unknown>) => Record<string, unknown>) => void;
  errors: Record<string, string>;
  /** Back to the engine's defaults (the form also forgets which fields were edited). */
  onReset: () => void;
}) {
  const allKeys = Object.keys(schema.properties ?? {}).filter((k) => !CHOSEN_ELSEWHERE.includes(k));
  const basic = allKeys.filter((k) => BASIC.includes(k));
  const advanced = allKeys.filter((k) => !BASIC.includes(k));
  const change = (k: string, v: unknown) => setValues((prev) => ({ ...prev, [k]: v }));
  return (
    <Card title="Settings" description={`${allKeys.length} settings from the ${plugin?.name} engine`}>
      <div className="stack">
        <SchemaFields root={schema} keys={basic} values={values} onChange={change} errors={errors} />
        {advanced.length ? (
          <details className="advanced">
            <summary>Advanced ({advanced.length})</summary>
            <SchemaFields root={schema} keys={advanced} values={values} onChange={change} errors={errors} />
          </details>
        ) : null}
        <div className="row"><Button size="sm" variant="ghost" onClick={onReset}>Reset to defaults</Button></div>
      </div>
    </Card>
  );
}
