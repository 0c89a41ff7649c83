/**
 * Change my password: forced for an account with a one-time password (the first admin's
 * printed at the server's first start), which can do nothing else until then (403
 * E_PASSWORD_CHANGE_REQUIRED); also reachable later. At least 10 characters (the server's
 * rule, checked there too).
 */
import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { ProblemAlert } from '../components/ProblemAlert';
import { safeNext } from './LoginPage';

const MIN_LENGTH = 10;

export function PasswordPage() {
  const session = useSession();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get('next'));
  const [current, setCurrent] = useState('');
  const [fresh, setFresh] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Change your password · Coffer';
  }, []);

  if (session.me === null) return <Navigate to={`/login?next=${encodeURIComponent(`/password?next=${next}`)}`} replace />;
  const forced = session.me?.mustChangePassword === true;
  const mismatch = again !== '' && again !== fresh;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (fresh.length < MIN_LENGTH || mismatch) return;
    setBusy(true);
    setError(undefined);
    try {
      await call('post', '/api/v1/auth/password', { body: { current, new: fresh } });
      await queryClient.invalidateQueries({ queryKey: ['auth'] });
      void navigate(next, { replace: true });
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Center mih="100vh" p="md" component="main">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={420}>
        <form onSubmit={(e) => void submit(e)}>
          <Stack>
            <Title order={1} size="h2">
              Change your password
            </Title>
            {forced && (
              <Alert color="blue" variant="light" title="A new password is needed">
                This account has a one-time password. Choose your own before going on.
              </Alert>
            )}
            {error !== undefined && <ProblemAlert error={error} />}
            <PasswordInput label="Current password" name="current" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.currentTarget.value)} />
            <PasswordInput
              label="New password"
              name="new"
              description={`At least ${MIN_LENGTH} characters`}
              autoComplete="new-password"
              required
              minLength={MIN_LENGTH}
              value={fresh}
              onChange={(e) => setFresh(e.currentTarget.value)}
              error={fresh !== '' && fresh.length < MIN_LENGTH ? `${MIN_LENGTH - fresh.length} more characters` : undefined}
            />
            <PasswordInput label="New password again" name="again" autoComplete="new-password" required value={again} onChange={(e) => setAgain(e.currentTarget.value)} error={mismatch ? 'The two new passwords differ' : undefined} />
            <Button type="submit" loading={busy} disabled={fresh.length < MIN_LENGTH || mismatch || again === ''}>
              Change password
            </Button>
            {!forced && (
              <Text size="sm">
                <a href={next}>Cancel</a>
              </Text>
            )}
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
