/**
 * Log in. After a lost session (`?expired=1`) it says so; after logging in it returns to
 * `?next=` (the page the user was on), or first to the password change when the account has
 * a one-time password (the first admin, or after an administrator's reset).
 */
import { Alert, Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from '@mantine/core';
import { useEffect, useState, type FormEvent } from 'react';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { useSession } from '../auth/session';
import { ProblemAlert } from '../components/ProblemAlert';

/** Only paths inside the console: never an open redirect. */
export function safeNext(next: string | null): string {
  return next !== null && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function LoginPage() {
  const session = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get('next'));
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Log in · Coffer';
  }, []);

  if (session.me != null && !busy) return <Navigate to={session.me.mustChangePassword ? `/password?next=${encodeURIComponent(next)}` : next} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const me = await session.login(user, password);
      void navigate(me.mustChangePassword ? `/password?next=${encodeURIComponent(next)}` : next, { replace: true });
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Center mih="100vh" p="md" component="main">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={380}>
        <form onSubmit={(e) => void submit(e)}>
          <Stack>
            <Title order={1} size="h2">
              Coffer
            </Title>
            {params.get('expired') === '1' && (
              <Alert color="blue" variant="light" title="Your session has ended">
                Log in again to continue where you were.
              </Alert>
            )}
            {error !== undefined && <ProblemAlert error={error} />}
            <TextInput label="User" name="user" autoComplete="username" required value={user} onChange={(e) => setUser(e.currentTarget.value)} data-autofocus autoFocus />
            <PasswordInput label="Password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
            <Button type="submit" loading={busy}>
              Log in
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
