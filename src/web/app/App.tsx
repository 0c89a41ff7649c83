/**
 * The console's pages and the guards in front of them: a page needs a signed-in user (else
 * the login, with `?next=` back here) whose one-time password has been changed; a dead
 * server shows a full-page message with a retry instead of a blank screen.
 */
import { Button, Center, Loader, Stack, Text, Title } from '@mantine/core';
import { lazy, type ComponentType } from 'react';
import { Navigate, Route, Routes, useLocation } from 'react-router';
import { useSession } from './auth/session';
import { ErrorBoundary } from './components/ErrorBoundary';
import { PageTitle } from './components/PageTitle';
import { ProblemAlert } from './components/ProblemAlert';
import { Shell } from './layout/Shell';
import { LoginPage } from './pages/LoginPage';
import { PasswordPage } from './pages/PasswordPage';

/**
 * A page fetched when first opened: each page is its own file in the build (and ECharts is
 * fetched only by the charts that need it: components/EChart.tsx), so the first visit loads the
 * frame, the login and the page asked for, not the whole console. Login and password stay in
 * the main file: they are the first thing a signed-out user sees.
 */
function page<K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) {
  return lazy(async () => ({ default: (await load())[name] }));
}

const ApprovalsPage = page(() => import('./pages/ApprovalsPage'), 'ApprovalsPage');
const WorkersPage = page(() => import('./pages/WorkersPage'), 'WorkersPage');
const AuditPage = page(() => import('./pages/AuditPage'), 'AuditPage');
const DashboardPage = page(() => import('./pages/DashboardPage'), 'DashboardPage');
const HealthPage = page(() => import('./pages/HealthPage'), 'HealthPage');
const JobPage = page(() => import('./pages/JobPage'), 'JobPage');
const JobsPage = page(() => import('./pages/JobsPage'), 'JobsPage');
const RestorePage = page(() => import('./pages/RestorePage'), 'RestorePage');
const SchedulesPage = page(() => import('./pages/SchedulesPage'), 'SchedulesPage');
const SnapshotPage = page(() => import('./pages/SnapshotPage'), 'SnapshotPage');
const StoragePage = page(() => import('./pages/StoragePage'), 'StoragePage');
const TaskPage = page(() => import('./pages/TaskPage'), 'TaskPage');
const TasksPage = page(() => import('./pages/TasksPage'), 'TasksPage');
const TimelinePage = page(() => import('./pages/TimelinePage'), 'TimelinePage');
const TokensPage = page(() => import('./pages/TokensPage'), 'TokensPage');
const UsersPage = page(() => import('./pages/UsersPage'), 'UsersPage');
const VmPage = page(() => import('./pages/VmPage'), 'VmPage');
const VmsPage = page(() => import('./pages/VmsPage'), 'VmsPage');

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
          <Route path="workers" element={<WorkersPage />} />
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
