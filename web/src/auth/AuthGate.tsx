import type { ReactNode } from "react";
import { Button, ErrorNotice, Spinner } from "../components/ui";
import { LoginPage } from "./LoginPage";
import { useLogout, useSession } from "../features/auth/api";

/** The app once this browser may use the API; the login page while the server wants a token it does not have. */
export function AuthGate({ children }: { children: ReactNode }) {
  const session = useSession();
  if (session.isPending) return <div className="login-shell"><Spinner label="Connecting" /></div>;
  if (session.error && !session.data) {
    // The API is down: the app itself says so page by page (and the health panel), so let it render.
    return <>{children}</>;
  }
  if (session.data?.auth_required && !session.data.authenticated) return <LoginPage />;
  return <>{children}</>;
}

/** A sign-out button, only where signing in exists. */
export function LogoutButton() {
  const session = useSession();
  const logout = useLogout();
  if (!session.data?.auth_required) return null;
  return (
    <div className="stack-sm">
      <Button size="sm" variant="ghost" onClick={() => logout.mutate()} loading={logout.isPending}>Sign out</Button>
      {logout.error ? <ErrorNotice error={logout.error} title="Could not sign out" /> : null}
    </div>
  );
}
