/**
 * The agent's HTTPS link to `coffer server` (the protocol: docs/agent.md): JSON requests
 * with the agent's token over the repository client's transport (repo/backend/https-transport.ts),
 * so the server is trusted exactly as a repository server is: a pinned SHA-256 fingerprint,
 * a CA file, or the system's CAs, never skipped. Every request has a deadline.
 *
 * Errors: a refused token is E_AGENT_REFUSED and an untrusted certificate E_SERVER_UNTRUSTED
 * (both final: the agent exits 21); a server that cannot be reached, or answers 5xx, is
 * E_CONNECTION_FAILED (the agent waits and tries again); 409 is E_TASK_NOT_FOUND (the server
 * no longer counts on that task).
 */
import { CofferError } from '../../errors/index.js';
import { HttpsTransport } from '../../repo/index.js';

export interface AgentTrust {
  fingerprint?: string;
  ca?: string;
}

export class AgentLink {
  private readonly transport: HttpsTransport;
  /** The server's host name as the agent reaches it (the agent repository server is there too). */
  readonly host: string;

  constructor(readonly server: string, private readonly token: string, trust: AgentTrust, pollSeconds: number) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new CofferError('E_USAGE', `--server ${server}: give https://HOST:PORT`);
    }
    if (url.protocol !== 'https:' || url.pathname !== '/' || url.search !== '') throw new CofferError('E_USAGE', `--server ${server}: give https://HOST:PORT (HTTPS only, no path)`);
    this.host = url.hostname;
    this.transport = new HttpsTransport(url.origin, {
      ...(trust.fingerprint === undefined ? {} : { fingerprint: trust.fingerprint }),
      ...(trust.ca === undefined ? {} : { ca: trust.ca }),
      maxSockets: 4,
      connectTimeoutMs: 10_000,
      // A poll is silent for up to its wait: the deadline is longer than that.
      idleTimeoutMs: (pollSeconds + 20) * 1000,
    });
  }

  /** POST a JSON body to `/agent/v1/PATH`; the answer's JSON (undefined for 204). */
  async post(path: string, body: unknown): Promise<unknown> {
    let answer;
    try {
      answer = await this.transport.send('POST', `/agent/v1/${path}`, Buffer.from(JSON.stringify(body)), {
        authorization: `Bearer ${this.token}`,
        'content-type': 'application/json',
      });
    } catch (error) {
      if (error instanceof CofferError) throw error;
      throw new CofferError('E_CONNECTION_FAILED', `cannot reach ${this.server}: ${(error as Error).message}`, { cause: error });
    }
    const text = answer.body.toString('utf8');
    const detail = () => {
      try {
        return String((JSON.parse(text) as { detail?: unknown }).detail ?? text);
      } catch {
        return text.slice(0, 200);
      }
    };
    if (answer.status === 401) throw new CofferError('E_AGENT_REFUSED', `${this.server} refused the agent: ${detail()}`);
    if (answer.status === 409) throw new CofferError('E_TASK_NOT_FOUND', detail());
    if (answer.status >= 500 || answer.status === 429) throw new CofferError('E_CONNECTION_FAILED', `${this.server} answered ${answer.status}: ${detail()}`);
    if (answer.status >= 400) throw new CofferError('E_PROTOCOL', `${this.server} refused ${path} (${answer.status}): ${detail()}`);
    return answer.status === 204 || text === '' ? undefined : (JSON.parse(text) as unknown);
  }

  close(): void {
    this.transport.destroy();
  }
}
