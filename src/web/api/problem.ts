/**
 * What can go wrong when the console talks to the server, as values the pages can show:
 * - {@link ApiProblem}: the server answered with an RFC 9457 problem detail (`code`, `title`,
 *   `detail`, maybe `errors`), or with a non-JSON error page (a proxy's), made into one;
 * - {@link ServerUnreachable}: no answer at all (server down, network gone, timeout).
 */
export interface ProblemDetail {
  type?: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  errors?: Array<Record<string, unknown>>;
}

export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: Array<Record<string, unknown>>;
  constructor(problem: ProblemDetail) {
    super(`${problem.title}: ${problem.detail}`);
    this.name = 'ApiProblem';
    this.status = problem.status;
    this.code = problem.code;
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = problem.errors ?? [];
  }
}

export class ServerUnreachable extends Error {
  constructor(readonly what: string, cause?: unknown) {
    super(`The Coffer server did not answer (${what}). It may be stopped or restarting, or the network is down.`, { cause });
    this.name = 'ServerUnreachable';
  }
}

/** Reads a failed answer: a problem detail when the server sent one, else one made from the status. */
export async function problemOf(response: Response): Promise<ApiProblem> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<ProblemDetail>;
    if (typeof body.code === 'string' && typeof body.detail === 'string') {
      return new ApiProblem({ ...body, title: body.title ?? response.statusText, status: body.status ?? response.status, code: body.code, detail: body.detail });
    }
  } catch {
    // not JSON: a proxy's or the browser's error page
  }
  return new ApiProblem({ title: response.statusText || `HTTP ${response.status}`, status: response.status, code: `HTTP_${response.status}`, detail: text.slice(0, 300) || 'the server gave no detail' });
}
