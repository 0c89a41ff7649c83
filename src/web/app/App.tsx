/**
 * The console's pages and the guards in front of them: a page needs a signed-in user (else
 * the login, with `?next=` back here) whose one-time password has been changed; a dead
 * server shows a full-page message with a retry instead of a blank screen.
 */
import { Button, Center, Loader, Stack, Text, Title } from '@mantine/core';
import { Navigate, Route, Routes, useLocation } from 'react-router';
import { useSession } from './auth/session';
import { ErrorBoundary } from './components/ErrorBoundary';
import { PageTitle } from './components/PageTitle';
import { ProblemAlert } from './components/ProblemAlert';
import { Shell } from './layout/Shell';
import { ApprovalsPage } from './pages/ApprovalsPage';
import { AuditPage } from './pages/AuditPage';
import { DashboardPage } from './pages/DashboardPage';
import { HealthPage } from './pages/HealthPage';
import { JobPage } from './pages/JobPage';
import { JobsPage } from './pages/JobsPage';
import { LoginPage } from './pages/LoginPage';
import { PasswordPage } from './pages/PasswordPage';
import { RestorePage } from './pages/RestorePage';
import { SchedulesPage } from './pages/SchedulesPage';
import { SnapshotPage } from './pages/SnapshotPage';
import { StoragePage } from './pages/StoragePage';
import { TaskPage } from './pages/TaskPage';
import { TasksPage } from './pages/TasksPage';
import { TimelinePage } from './pages/TimelinePage';
import { TokensPage } from './pages/TokensPage';
import { UsersPage } from './pages/UsersPage';
import { VmPage } from './pages/VmPage';
import { VmsPage } from './pages/VmsPage';

function RequireSession() {
  const session = useSession();
  const location = useLocation();
  const here = `${location.pathname}${location.search}`;
  if (session.me === undefined && session.error !== null && session.error !== undefined) {
    return (
      <Center mih="100vh" p="md" component="main">
        <Stack maw={520}>
          <Title order={1} size="h2">
            Coffer
          </Title>
          <ProblemAlert error={session.error} onRetry={session.retry} />
        </Stack>
      </Center>
    );
  }
  if (session.me === undefined)
    return (
      <Center mih="100vh">
        <Loader aria-label="Loading the console" />
      </Center>
    );
  if (session.me === null) return <Navigate to={`/login?${session.lost ? 'expired=1&' : ''}next=${encodeURIComponent(here)}`} replace />;
  if (session.me.mustChangePassword) return <Navigate to={`/password?next=${encodeURIComponent(here)}`} replace />;
  return <Shell />;
}

function NotFoundPage() {
  return (
    <>
      <PageTitle>Page not found</PageTitle>
      <Text>The console has no page at this address.</Text>
      <Button component="a" href="/" variant="light" mt="md">
        Go to the dashboard
      </Button>
    </>
  );
}

export function App() {
  return (
    <ErrorBoundary>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="/password" element={<PasswordPage />} />
        <Route element={<RequireSession />}>
          <Route index element={<DashboardPage />} />
          <Route path="vms" element={<VmsPage />} />
          <Route path="vms/:vm" element={<VmPage />} />
          <Route path="repositories/:repo/snapshots/:snapshot" element={<SnapshotPage />} />
          <Route path="restore" element={<RestorePage />} />
          <Route path="timeline" element={<TimelinePage />} />
          <Route path="tasks" element={<TasksPage />} />
          <Route path="tasks/:id" element={<TaskPage />} />
          <Route path="jobs" element={<JobsPage />} />
          <Route path="jobs/:job" element={<JobPage />} />
          <Route path="schedules" element={<SchedulesPage />} />
          <Route path="storage" element={<StoragePage />} />
          <Route path="health" element={<HealthPage />} />
          <Route path="audit" element={<AuditPage />} />
          <Route path="users" element={<UsersPage />} />
          <Route path="tokens" element={<TokensPage />} />
          <Route path="approvals" element={<ApprovalsPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </ErrorBoundary>
  );
}
