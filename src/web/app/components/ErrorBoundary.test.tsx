import { screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { renderInConsole } from '../testing/render';
import { ErrorBoundary } from './ErrorBoundary';

function Broken(): never {
  throw new TypeError("Cannot read properties of undefined (reading 'items')");
}

describe('ErrorBoundary', () => {
  // React reports a caught render error on the console; the test keeps its output quiet.
  beforeEach(() => void vi.spyOn(console, 'error').mockImplementation(() => {}));
  afterEach(() => vi.restoreAllMocks());

  it('shows what failed and a way on instead of a blank page, and clears when the page changes', () => {
    const { rerender, container } = renderInConsole(
      <ErrorBoundary resetKey="/jobs">
        <Broken />
      </ErrorBoundary>,
    );
    expect(screen.getByRole('alert').textContent).toContain('This page failed');
    expect(screen.getByRole('button', { name: 'Reload the page' })).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Go to the dashboard' }).getAttribute('href')).toBe('/');
    expect(container.textContent).not.toMatch(/\n\s+at /);
    rerender(
      <ErrorBoundary resetKey="/tasks">
        <p>the tasks</p>
      </ErrorBoundary>,
    );
    expect(screen.getByText('the tasks')).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  });
});
