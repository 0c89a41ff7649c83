import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { ApiProblem, problemOf, ServerUnreachable } from '../../api/problem';
import { renderInConsole } from '../testing/render';
import { ProblemAlert } from './ProblemAlert';

describe('ProblemAlert', () => {
  it('shows a problem detail with its title, detail, field errors and code', () => {
    const problem = new ApiProblem({ title: 'Bad Request', status: 400, code: 'E_CONFIG_INVALID', detail: 'config:26: jobs[0].schedule: invalid', errors: [{ key: 'jobs[0].schedule', message: 'minute 61 is outside 0..59' }] });
    renderInConsole(<ProblemAlert error={problem} context="Saving the job" />);
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('Saving the job: Bad Request');
    expect(alert.textContent).toContain('config:26: jobs[0].schedule: invalid');
    expect(alert.textContent).toContain('jobs[0].schedule: minute 61 is outside 0..59');
    expect(alert.textContent).toContain('code E_CONFIG_INVALID');
  });

  it('says plainly that the role does not allow a forbidden action', () => {
    renderInConsole(<ProblemAlert error={new ApiProblem({ title: 'Forbidden', status: 403, code: 'E_FORBIDDEN', detail: 'user helpdesk lacks the permission users.write here' })} />);
    expect(screen.getByRole('alert').textContent).toContain('Not allowed');
    expect(screen.getByRole('alert').textContent).toContain('Your role does not allow this.');
    // A way on: who can change it, and a link out of the dead end.
    expect(screen.getByTestId('forbidden-way-on').textContent).toContain('An administrator can grant it');
    expect(screen.getByRole('link', { name: 'back to the dashboard' }).getAttribute('href')).toBe('/');
  });

  it('offers a retry when the server does not answer, and never shows a stack', () => {
    const retry = vi.fn();
    const error = new ServerUnreachable('GET /api/v1/vms', new TypeError('Failed to fetch'));
    renderInConsole(<ProblemAlert error={error} onRetry={retry} />);
    expect(screen.getByRole('alert').textContent).toContain('The server does not answer');
    expect(screen.getByRole('alert').textContent).not.toMatch(/\n\s+at |\.js:\d+/);
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(retry).toHaveBeenCalledOnce();
  });

  it('makes a problem of a non-JSON error page (a proxy\'s 502)', async () => {
    const problem = await problemOf(new Response('<html>Bad Gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(problem.status).toBe(502);
    expect(problem.title).toBe('Bad Gateway');
    expect(problem.code).toBe('HTTP_502');
  });
});
