import { useState } from "react";
import { Alert, Button, Field } from "../components/ui";
import { ApiError, errorMessage } from "../lib/api-errors";
import { useLogin } from "../features/auth/api";

function loginError(error: unknown): string {
  if (error instanceof ApiError && error.status === 401) return "That token is not right. It is the ISENGARD_API_TOKEN the server was started with.";
  if (error instanceof ApiError && error.status === 429) return "Too many attempts. Wait a minute and try again.";
  return errorMessage(error);
}

/** Shown instead of the app when the server asks for its API token and this browser has no session. */
export function LoginPage() {
  const [token, setToken] = useState("");
  const login = useLogin();
  return (
    <main className="login-shell">
      <form
        className="card login-card stack"
        aria-labelledby="login-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) login.mutate(token.trim());
        }}
      >
        <div className="brand" style={{ padding: 0 }}>
          <span className="brand-mark" aria-hidden>I</span>
          <span>Isengard</span>
        </div>
        <h1 id="login-title">Sign in</h1>
        <p className="muted small" style={{ margin: 0 }}>This server is protected by an API token. Enter it once; this browser stays signed in.</p>
        <Field label="API token" htmlFor="login-token">
          <input
            id="login-token"
            className="input mono"
            type="password"
            autoComplete="current-password"
            autoFocus
            value={token}
            onChange={(e) => {
              setToken(e.target.value);
              if (login.error) login.reset();
            }}
          />
        </Field>
        {login.error ? <Alert tone="danger" title="Not signed in">{loginError(login.error)}</Alert> : null}
        <Button type="submit" variant="primary" loading={login.isPending} disabled={!token.trim()}>Sign in</Button>
      </form>
    </main>
  );
}
