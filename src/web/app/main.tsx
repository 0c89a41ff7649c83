/**
 * The console's entry point: Mantine (theme, colour scheme remembered), TanStack Query (the
 * API's answers cached per page; a 4xx is not retried, a dead server is retried once), the
 * router, the session.
 */
import '@mantine/core/styles.css';
import './console.css';
import { MantineProvider } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { ApiProblem } from '../api/problem';
import { App } from './App';
import { SessionProvider } from './auth/session';
import { colorSchemeManager, cssVariablesResolver, theme } from './theme';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      retry: (failures, error) => !(error instanceof ApiProblem && error.status < 500) && failures < 1,
      staleTime: 15_000,
      refetchOnWindowFocus: true,
    },
  },
});

// Tasks and runs change all the time: a page showing them reads them again when it opens
// (the events stream keeps them current while it stays open: live/events.ts).
for (const key of [['tasks'], ['runs'], ['task'], ['task-log']]) queryClient.setQueryDefaults(key, { staleTime: 0 });

const root = document.getElementById('root');
if (root === null) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <MantineProvider theme={theme} colorSchemeManager={colorSchemeManager} cssVariablesResolver={cssVariablesResolver} defaultColorScheme="auto">
      <QueryClientProvider client={queryClient}>
        <BrowserRouter>
          <SessionProvider>
            <App />
          </SessionProvider>
        </BrowserRouter>
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
