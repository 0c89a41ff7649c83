/**
 * The frame around every signed-in page: a header (menu button on phones, the product, the
 * theme toggle, who is signed in, log out), the navigation (only the pages the caller's role
 * may open), a "skip to content" link for keyboard users, and the page itself inside an error
 * boundary (and a loader while the page's file is fetched). Mantine's AppShell folds the navigation away below the `sm` breakpoint.
 */
import { AppShell, Anchor, Burger, Button, Group, Loader, NavLink, Text, VisuallyHidden } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Suspense } from 'react';
import { Link, Outlet, useLocation } from 'react-router';
import { useSession } from '../auth/session';
import { ErrorBoundary } from '../components/ErrorBoundary';
import { ThemeToggle } from '../components/ThemeToggle';

interface NavItem {
  to: string;
  label: string;
  /** The permission the page's API needs; undefined: any signed-in user. */
  permission?: string;
}

export const NAV_ITEMS: readonly NavItem[] = [
  { to: '/', label: 'Dashboard' },
  { to: '/vms', label: 'VMs and restore points', permission: 'inventory.read' },
  { to: '/restore', label: 'Restore', permission: 'files.browse' },
  { to: '/timeline', label: 'Backup window', permission: 'inventory.read' },
  { to: '/tasks', label: 'Tasks', permission: 'inventory.read' },
  { to: '/jobs', label: 'Jobs', permission: 'inventory.read' },
  { to: '/schedules', label: 'Schedules', permission: 'inventory.read' },
  { to: '/storage', label: 'Storage over time', permission: 'inventory.read' },
  { to: '/health', label: 'Repository health', permission: 'inventory.read' },
  { to: '/workers', label: 'Workers', permission: 'inventory.read' },
  { to: '/audit', label: 'Audit log', permission: 'audit.read' },
  { to: '/users', label: 'Users and grants', permission: 'users.read' },
  { to: '/tokens', label: 'API tokens' },
  { to: '/approvals', label: 'Approvals', permission: 'approvals.decide' },
];

export function Shell() {
  const [opened, { toggle, close }] = useDisclosure(false);
  const session = useSession();
  const location = useLocation();
  const items = NAV_ITEMS.filter((item) => item.permission === undefined || session.can(item.permission));
  const active = (to: string) => (to === '/' ? location.pathname === '/' : location.pathname === to || location.pathname.startsWith(`${to}/`));

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 240, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Anchor href="#main" className="skip-link">
          Skip to content
        </Anchor>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={opened ? 'Close the navigation' : 'Open the navigation'} />
            <Text fw={700} size="lg" component={Link} to="/" c="inherit" style={{ textDecoration: 'none' }}>
              Coffer
            </Text>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <ThemeToggle />
            <Text size="sm" visibleFrom="xs" data-testid="signed-in-user">
              <VisuallyHidden>Signed in as </VisuallyHidden>
              {session.me?.user}
            </Text>
            <Button variant="default" size="xs" onClick={() => void session.logout()}>
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main navigation" component="nav">
        {items.map((item) => (
          <NavLink key={item.to} component={Link} to={item.to} label={item.label} active={active(item.to)} onClick={close} aria-current={active(item.to) ? 'page' : undefined} />
        ))}
      </AppShell.Navbar>
      <AppShell.Main id="main">
        <ErrorBoundary resetKey={location.pathname}>
          {/* Each page is its own file, fetched when first opened (App.tsx): the frame stays while it loads. */}
          <Suspense fallback={<Loader aria-label="Loading the page" m="md" />}>
            <Outlet />
          </Suspense>
        </ErrorBoundary>
      </AppShell.Main>
    </AppShell>
  );
}
