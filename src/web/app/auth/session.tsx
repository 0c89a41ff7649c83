/**
 * The console's session: who is signed in (GET /auth/me), what their roles allow (GET
 * /roles), log in, log out, and what happens when the session is lost (a 401 anywhere: back
 * to the login page with `?next=` the page the user was on, so that logging in again returns
 * there).
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useNavigate } from 'react-router';
import { call, onSessionLost, setCsrfToken, type Answer } from '../../api/client';
import { ApiProblem } from '../../api/problem';
import { canOn, canSomewhere, type RoleTable } from './permissions';

export type Me = Answer<'/api/v1/auth/me', 'get'>;

export interface Session {
  /** undefined while loading; null when nobody is signed in. */
  me: Me | null | undefined;
  /** True when a signed-in session was lost (expired, ended elsewhere) rather than never there. */
  lost: boolean;
  /** Set when /auth/me failed for another reason than 401 (a dead server). */
  error: unknown;
  retry(): void;
  login(user: string, password: string): Promise<Me>;
  logout(): Promise<void>;
  /** The permission on some path (lists). */
  can(permission: string): boolean;
  /** The permission on one object path (`/vms/web1`). */
  canOn(permission: string, path: string): boolean;
}

const SessionContext = createContext<Session | undefined>(undefined);
const ME = ['auth', 'me'] as const;

/** Reads /auth/me: its answer, or null when the server says "not signed in" (401). */
async function fetchMe(): Promise<Me | null> {
  try {
    const me = await call('get', '/api/v1/auth/me');
    setCsrfToken(me.csrfToken);
    return me;
  } catch (error) {
    if (error instanceof ApiProblem && error.status === 401) return null;
    throw error;
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const me = useQuery({ queryKey: ME, queryFn: fetchMe, retry: false, staleTime: 60_000 });
  const roles = useQuery({ queryKey: ['roles'], queryFn: () => call('get', '/api/v1/roles'), enabled: me.data != null && !me.data.mustChangePassword, staleTime: Infinity });

  // A lost session only marks the state: RequireSession (App.tsx) then sends the user to the
  // login page with `expired=1` and `next=` where they were. (Navigating from here as well
  // would race with that redirect.)
  const [lost, setLost] = useState(false);
  useEffect(
    () =>
      onSessionLost(() => {
        setCsrfToken(undefined);
        setLost(true);
        queryClient.setQueryData(ME, null);
      }),
    [queryClient],
  );

  const login = useCallback(
    async (user: string, password: string) => {
      const answer = await call('post', '/api/v1/auth/login', { body: { user, password } });
      setCsrfToken(answer.csrfToken);
      setLost(false);
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== 'auth' });
      queryClient.setQueryData(ME, answer);
      return answer;
    },
    [queryClient],
  );

  const logout = useCallback(async () => {
    try {
      await call('post', '/api/v1/auth/logout');
    } finally {
      setCsrfToken(undefined);
      queryClient.clear();
      queryClient.setQueryData(ME, null);
      void navigate('/login', { replace: true });
    }
  }, [queryClient, navigate]);

  const value = useMemo<Session>(() => {
    const grants = me.data?.grants ?? [];
    const table: RoleTable | undefined = roles.data;
    return {
      me: me.isPending ? undefined : me.isError ? undefined : me.data,
      lost,
      error: me.error,
      retry: () => void me.refetch(),
      login,
      logout,
      can: (permission) => canSomewhere(grants, table, permission),
      canOn: (permission, path) => canOn(grants, table, permission, path),
    };
  }, [me.data, me.isPending, me.isError, me.error, me.refetch, lost, roles.data, login, logout]);

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === undefined) throw new Error('useSession outside SessionProvider');
  return session;
}
