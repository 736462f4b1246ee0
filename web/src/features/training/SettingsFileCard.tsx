import { useMutation } from "@tanstack/react-query";
import { useRef } from "react";
import { Alert, Button, Card, ErrorNotice } from "../../components/ui";
import { importSettings, type SettingsFile } from "./api";

// A settings file is a few kilobytes; anything far larger is not one (the server refuses past 64 000 characters).
const MAX_FILE_BYTES = 256 * 1024;

/** Import a settings file (exported from a run or a preset, or written by hand): the server validates it and the
 * form fills with the complete config it gives. */
export function SettingsFileCard({ onImport }: { onImport: (settings: SettingsFile) => void }) {
  const input = useRef<HTMLInputElement>(null);
  const read = useMutation({
    mutationFn: async (file: File) => {
      if (file.size > MAX_FILE_BYTES) throw new Error(`${file.name} is too large to be a settings file`);
      return { file: file.name, settings: await importSettings(await file.text()) };
    },
    onSuccess: ({ settings }) => onImport(settings),
  });
  return (
    <Card title="Settings file" description="Fill the form from a YAML file exported from a run or a preset.">
      <div className="stack-sm">
        <input
          ref={input}
          type="file"
          accept=".yaml,.yml,application/yaml,text/yaml"
          aria-label="Settings file"
          hidden
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) read.mutate(file);
            e.target.value = "";
          }}
        />
        <Button size="sm" loading={read.isPending} onClick={() => input.current?.click()}>Import settings…</Button>
        {read.data ? (
          <Alert tone="ok" title={`Settings of ${read.data.settings.name || read.data.file} imported`}>
            The form shows them; change what you need.
          </Alert>
        ) : null}
        {read.error ? <ErrorNotice error={read.error} title="The file was not imported" /> : null}
      </div>
    </Card>
  );
}
