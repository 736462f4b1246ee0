// Whether this installation asks for the API token, and whether this browser has a session (an HttpOnly cookie
// set by POST /api/auth/login; the page never sees the token again after sending it).
import { queryOptions, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { client, unwrap, type Schemas } from "../../api/client";

export type SessionState = Schemas["SessionState"];

export const sessionKey = ["auth", "session"] as const;

export const sessionQuery = () =>
  queryOptions({
    queryKey: sessionKey,
    queryFn: ({ signal }) => unwrap(client.GET("/api/auth/session", { signal })),
    staleTime: 60_000,
    retry: 1,
  });

export function useSession() {
  return useQuery(sessionQuery());
}

/** Signing in or out changes what every other query may read: start them over. */
function useAfterSessionChange() {
  const queryClient = useQueryClient();
  return (state: SessionState) => {
    queryClient.setQueryData(sessionKey, state);
    queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== sessionKey[0] });
  };
}

export function useLogin() {
  const after = useAfterSessionChange();
  return useMutation({
    mutationFn: (token: string) => unwrap(client.POST("/api/auth/login", { body: { token } })),
    onSuccess: after,
  });
}

export function useLogout() {
  const after = useAfterSessionChange();
  return useMutation({
    mutationFn: () => unwrap(client.POST("/api/auth/logout")),
    onSuccess: after,
  });
}
