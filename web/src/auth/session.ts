// Whether this installation asks for the API token, and whether this browser has a session (an HttpOnly cookie
// set by POST /api/auth/login; the page never sees the token again after sending it).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../lib/api";

export interface SessionState {
  auth_required: boolean;
  authenticated: boolean;
}

export const sessionKey = ["auth", "session"] as const;

export function useSession() {
  return useQuery({
    queryKey: sessionKey,
    queryFn: ({ signal }) => api.get<SessionState>("/api/auth/session", undefined, signal),
    staleTime: 60_000,
    retry: 1,
  });
}

/** Signing in or out changes what every other query may read: start them over. */
function useAfterSessionChange() {
  const client = useQueryClient();
  return (state: SessionState) => {
    client.setQueryData(sessionKey, state);
    client.removeQueries({ predicate: (query) => query.queryKey[0] !== sessionKey[0] });
  };
}

export function useLogin() {
  const after = useAfterSessionChange();
  return useMutation({
    mutationFn: (token: string) => api.post<SessionState>("/api/auth/login", { token }),
    onSuccess: after,
  });
}

export function useLogout() {
  const after = useAfterSessionChange();
  return useMutation({
    mutationFn: () => api.post<SessionState>("/api/auth/logout"),
    onSuccess: after,
  });
}
