// The component kit: small wrappers over Radix primitives and plain elements with the app's styles.
import * as AlertDialog from "@radix-ui/react-alert-dialog";
import * as Dialog from "@radix-ui/react-dialog";
import * as ProgressPrimitive from "@radix-ui/react-progress";
import * as SwitchPrimitive from "@radix-ui/react-switch";
import * as TabsPrimitive from "@radix-ui/react-tabs";
import { type ButtonHTMLAttributes, type ReactNode, forwardRef, useId, useState } from "react";
import { errorMessage } from "../../lib/api-errors";

type Variant = "default" | "primary" | "danger" | "ghost";

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: Variant;
  size?: "sm" | "md";
  icon?: boolean;
  loading?: boolean;
}

export const Button = forwardRef<HTMLButtonElement, ButtonProps>(function Button(
  { variant = "default", size = "md", icon, loading, className, children, disabled, type = "button", ...rest },
  ref,
) {
  const classes = ["btn", variant !== "default" ? variant : "", size === "sm" ? "sm" : "", icon ? "icon" : "", className ?? ""];
  return (
    <button ref={ref} type={type} className={classes.filter(Boolean).join(" ")} disabled={disabled || loading} {...rest}>
      {loading ? <span className="spinner" aria-hidden /> : null}
      {children}
    </button>
  );
});

export function Card({ title, description, actions, children, className, flush }: {
  title?: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
  children?: ReactNode;
  className?: string;
  flush?: boolean;
}) {
  return (
    <section className={["card", flush ? "flush" : "", className ?? ""].filter(Boolean).join(" ")}>
      {title || actions ? (
        <div className="card-header" style={flush ? { padding: "16px 18px 0" } : undefined}>
          <div>
            {title ? <h2>{title}</h2> : null}
            {description ? <p>{description}</p> : null}
          </div>
          {actions ? <div className="row">{actions}</div> : null}
        </div>
      ) : null}
      {children}
    </section>
  );
}

export function PageHeader({ title, description, actions, crumbs }: {
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
  crumbs?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div>
        {crumbs ? <div className="breadcrumbs">{crumbs}</div> : null}
        <h1>{title}</h1>
        {description ? <p>{description}</p> : null}
      </div>
      {actions ? <div className="row">{actions}</div> : null}
    </header>
  );
}

export type Tone = "ok" | "warn" | "danger" | "info" | "accent" | "neutral";

export function Badge({ tone = "neutral", children, title }: { tone?: Tone; children: ReactNode; title?: string }) {
  return (
    <span className={`badge ${tone === "neutral" ? "" : tone}`} title={title}>
      {children}
    </span>
  );
}

export function Alert({ tone = "info", title, children, action }: { tone?: "info" | "warn" | "danger" | "ok"; title: ReactNode; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className={`alert ${tone}`} role={tone === "danger" ? "alert" : "status"}>
      <div style={{ flex: 1, minWidth: 0 }}>
        <div className="alert-title">{title}</div>
        {children ? <p>{children}</p> : null}
      </div>
      {action}
    </div>
  );
}

/** A failed query or mutation as a readable message, with a retry when one makes sense. */
export function ErrorNotice({ error, title = "Something went wrong", onRetry }: { error: unknown; title?: string; onRetry?: () => void }) {
  return (
    <Alert tone="danger" title={title} action={onRetry ? <Button size="sm" onClick={onRetry}>Retry</Button> : undefined}>
      {errorMessage(error)}
    </Alert>
  );
}

export function Empty({ icon = "○", title, children, action }: { icon?: ReactNode; title: ReactNode; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty">
      <div className="empty-icon" aria-hidden>{icon}</div>
      <h3>{title}</h3>
      {children ? <div>{children}</div> : null}
      {action}
    </div>
  );
}

export function Spinner({ label = "Loading" }: { label?: string }) {
  return (
    <div className="row muted" role="status">
      <span className="spinner" aria-hidden />
      <span>{label}…</span>
    </div>
  );
}

export function ProgressBar({ value, max = 100, tone, label, indeterminate }: { value: number; max?: number; tone?: "ok" | "danger"; label?: string; indeterminate?: boolean }) {
  const pct = max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0;
  return (
    <ProgressPrimitive.Root
      className={["progress", tone ?? "", indeterminate ? "indeterminate" : ""].filter(Boolean).join(" ")}
      value={indeterminate ? null : pct}
      max={100}
      aria-label={label ?? "progress"}
    >
      <ProgressPrimitive.Indicator className="progress-bar" style={{ width: `${pct}%` }} />
    </ProgressPrimitive.Root>
  );
}

export function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: string }) {
  return (
    <div className="stat" title={hint}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
    </div>
  );
}

export function Field({ label, hint, error, children, htmlFor }: { label: ReactNode; hint?: ReactNode; error?: ReactNode; children: ReactNode; htmlFor?: string }) {
  return (
    <div className="field">
      <label htmlFor={htmlFor}>{label}</label>
      {children}
      {error ? <span className="field-error">{error}</span> : hint ? <span className="hint">{hint}</span> : null}
    </div>
  );
}

export function Switch({ checked, onChange, label }: { checked: boolean; onChange: (value: boolean) => void; label: string }) {
  const id = useId();
  return (
    <div className="row" style={{ gap: 8 }}>
      <SwitchPrimitive.Root id={id} className="switch" checked={checked} onCheckedChange={onChange}>
        <SwitchPrimitive.Thumb className="switch-thumb" />
      </SwitchPrimitive.Root>
      <label htmlFor={id} className="small">{label}</label>
    </div>
  );
}

export const Tabs = TabsPrimitive.Root;
export function TabList({ children, label }: { children: ReactNode; label: string }) {
  return <TabsPrimitive.List className="tabs-list" aria-label={label}>{children}</TabsPrimitive.List>;
}
export function Tab({ value, children }: { value: string; children: ReactNode }) {
  return <TabsPrimitive.Trigger className="tabs-trigger" value={value}>{children}</TabsPrimitive.Trigger>;
}
export const TabPanel = TabsPrimitive.Content;

export function Modal({ open, onOpenChange, title, description, children, footer, wide }: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: ReactNode;
  description?: ReactNode;
  children?: ReactNode;
  footer?: ReactNode;
  wide?: boolean;
}) {
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className={`dialog-content${wide ? " wide" : ""}`} aria-describedby={description ? undefined : undefined}>
          <Dialog.Title className="dialog-title">{title}</Dialog.Title>
          {description ? <Dialog.Description className="dialog-description">{description}</Dialog.Description> : <Dialog.Description className="sr-only">{typeof title === "string" ? title : "dialog"}</Dialog.Description>}
          {children}
          {footer ? <div className="dialog-footer">{footer}</div> : null}
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

/** Destructive actions always ask first; the action's error is shown in the dialog, not swallowed. */
export function ConfirmButton({ title, description, confirmLabel = "Delete", cancelLabel = "Cancel", onConfirm, children, size = "md", variant = "danger", disabled, ariaLabel }: {
  title: ReactNode;
  description: ReactNode;
  confirmLabel?: string;
  cancelLabel?: string;
  onConfirm: () => Promise<unknown> | void;
  children: ReactNode;
  size?: "sm" | "md";
  variant?: Variant;
  disabled?: boolean;
  ariaLabel?: string;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <AlertDialog.Root open={open} onOpenChange={(next) => { setOpen(next); if (!next) setError(null); }}>
      <AlertDialog.Trigger asChild>
        <Button variant={variant} size={size} disabled={disabled} aria-label={ariaLabel}>{children}</Button>
      </AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="dialog-overlay" />
        <AlertDialog.Content className="dialog-content">
          <AlertDialog.Title className="dialog-title">{title}</AlertDialog.Title>
          <AlertDialog.Description className="dialog-description">{description}</AlertDialog.Description>
          {error ? <ErrorNotice error={error} title="That did not work" /> : null}
          <div className="dialog-footer">
            <AlertDialog.Cancel asChild>
              <Button>{cancelLabel}</Button>
            </AlertDialog.Cancel>
            <Button
              variant="danger"
              className="solid"
              loading={busy}
              onClick={async () => {
                setBusy(true);
                setError(null);
                try {
                  await onConfirm();
                  setOpen(false);
                } catch (err) {
                  setError(err);
                } finally {
                  setBusy(false);
                }
              }}
            >
              {confirmLabel}
            </Button>
          </div>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}

/** Previous / next over an offset-paged list of `total` items, `size` a page; nothing when one page holds them all. */
export function Pager({ offset, size, total, onOffset }: { offset: number; size: number; total: number; onOffset: (offset: number) => void }) {
  if (total <= size) return null;
  return (
    <div className="row" style={{ justifyContent: "center" }}>
      <Button size="sm" disabled={offset === 0} onClick={() => onOffset(Math.max(0, offset - size))}>Previous</Button>
      <span className="small muted">{offset + 1}–{Math.min(offset + size, total)} of {total}</span>
      <Button size="sm" disabled={offset + size >= total} onClick={() => onOffset(offset + size)}>Next</Button>
    </div>
  );
}
