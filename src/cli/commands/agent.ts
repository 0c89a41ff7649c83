/**
 * `coffer agent --server URL`: a machine's file-backup agent managed by `coffer server`
 * (docs/agent.md). It connects out only: says hello, then long-polls for work; runs each
 * backup it is given (one at a time) and reports its log and end; stops a backup the server
 * cancels; waits for a server that is down (1 s doubling to 30 s) and says hello again. A
 * refused token or an untrusted certificate ends it (exit 21); SIGTERM/Ctrl-C stop it, the
 * backup in progress interrupted (its post-hook run, its end reported).
 *
 * `coffer agent token add|list|remove --data DIR` manage agents' tokens on the server's machine.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hostname, platform, release } from 'node:os';
import { CofferError } from '../../errors/index.js';
import type { Assignment, PollAnswer } from '../../server/index.js';
import { AgentLink } from '../agent/agent-link.js';
import { runAssignment } from '../agent/run-assignment.js';
import type { CommandContext } from '../context.js';
import { tokenListCommand, tokenRemoveCommand } from './serve-repo.js';

export interface AgentCommandOptions {
  server?: string;
  token?: string;
  tokenFile?: string;
  name?: string;
  fingerprint?: string;
  ca?: string;
  /** Seconds a poll waits (default 25, at most 30). */
  poll?: string;
}

/** The Coffer version the agent reports. */
const VERSION = '0.1.0';
const POLL_SECONDS = 25;
const BACKOFF_MAX_MS = 30_000;
/** How long the end of a task is tried again while the server is away. */
const END_RETRY_MS = 120_000;

/** `coffer agent`: runs until stopped; throws E_AGENT_REFUSED / E_SERVER_UNTRUSTED (exit 21). */
export async function agentCommand(options: AgentCommandOptions, context: CommandContext): Promise<number> {
  if (options.server === undefined) throw new CofferError('E_USAGE', 'coffer agent needs --server https://HOST:PORT');
  const token = await tokenOf(options, context.env);
  const pollSeconds = options.poll === undefined ? POLL_SECONDS : Number(options.poll);
  if (!Number.isInteger(pollSeconds) || pollSeconds < 1 || pollSeconds > 30) throw new CofferError('E_USAGE', '--poll SECONDS: 1 to 30');
  const ca = options.ca === undefined ? undefined : await readFile(options.ca, 'utf8').catch((error: Error) => {
    throw new CofferError('E_USAGE', `--ca ${options.ca}: ${error.message}`);
  });
  const fingerprint = options.fingerprint ?? (context.env.COFFER_SERVER_FINGERPRINT || undefined);
  const link = new AgentLink(options.server, token, { ...(fingerprint === undefined ? {} : { fingerprint }), ...(ca === undefined ? {} : { ca }) }, pollSeconds);
  const say = (line: string) => context.stderr.write(`coffer agent: ${line}\n`);
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  let fatal: unknown;
  try {
    let hello = false;
    let backoffMs = 1000;
    while (!context.signal.aborted) {
      try {
        if (!hello) {
          const answer = (await link.post('hello', { ...(options.name === undefined ? {} : { name: options.name }), hostname: hostname(), os: `${platform()} ${release()}`, version: VERSION })) as { name: string };
          hello = true;
          backoffMs = 1000;
          say(`connected to ${options.server} as agent ${answer.name}`);
        }
        const answer = (await link.post(`poll?wait=${pollSeconds}`, { running: [...running.keys()] })) as PollAnswer;
        for (const id of answer.cancel) {
          const task = running.get(id);
          if (task !== undefined && !task.abort.signal.aborted) {
            say(`task ${id}: stopping (the server cancelled it)`);
            task.abort.abort();
          }
        }
        if (answer.assign !== undefined && !running.has(answer.assign.taskId)) startTask(answer.assign);
      } catch (error) {
        if (context.signal.aborted) break;
        const code = (error as { code?: unknown }).code;
        if (code === 'E_AGENT_REFUSED' || code === 'E_SERVER_UNTRUSTED' || code === 'E_USAGE') throw error;
        hello = false;
        say(`${(error as Error).message}; trying again in ${backoffMs / 1000} s`);
        await sleep(backoffMs, context.signal);
        backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
      }
    }
  } catch (error) {
    fatal = error;
  } finally {
    for (const task of running.values()) task.abort.abort();
    await Promise.all([...running.values()].map((t) => t.done));
    link.close();
  }
  if (fatal !== undefined) throw fatal;
  throw new CofferError('E_INTERRUPTED', 'the agent was stopped');

  function startTask(task: Assignment): void {
    const abort = new AbortController();
    const stop = () => abort.abort();
    context.signal.addEventListener('abort', stop);
    say(`task ${task.taskId}: backing up ${task.paths.join(', ')} as ${task.vm}`);
    const pending: { level: 'info' | 'warning' | 'error'; line: string }[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const log = pending.splice(0, pending.length);
      try {
        await link.post(`tasks/${task.taskId}/events`, { log });
      } catch (error) {
        if ((error as { code?: unknown }).code === 'E_TASK_NOT_FOUND') abort.abort();
      }
    };
    const flusher = setInterval(() => void flush(), 1000);
    const done = (async () => {
      let end: unknown;
      try {
        const report = await runAssignment(task, {
          serverHost: link.host, token, ...(fingerprint === undefined ? {} : { fingerprint }), ...(options.ca === undefined ? {} : { cacert: options.ca }),
          log: (level, line) => pending.push({ level, line }), signal: abort.signal, env: context.env, stdin: context.stdin,
        });
        end = { result: report };
        say(`task ${task.taskId}: snapshot ${report.snapshot} saved${report.warnings.length > 0 ? ` with ${report.warnings.length} warning(s)` : ''}`);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        const message = ((error as Error).message || String(error)).split('\n')[0] as string;
        end = { error: { code: typeof code === 'string' && /^E_[A-Z_]+$/.test(code) ? code : 'E_WORKER_FAILED', message: message.slice(0, 2000) } };
        say(`task ${task.taskId}: ${message}`);
      } finally {
        clearInterval(flusher);
        context.signal.removeEventListener('abort', stop);
      }
      await flush();
      await reportEnd(task.taskId, end);
      running.delete(task.taskId);
    })();
    running.set(task.taskId, { abort, done });
  }

  /** The end must reach the server: tried again while it is away, for a while. */
  async function reportEnd(taskId: string, end: unknown): Promise<void> {
    const deadline = Date.now() + END_RETRY_MS;
    for (let delay = 1000; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        await link.post(`tasks/${taskId}/end`, end);
        return;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code !== 'E_CONNECTION_FAILED' || Date.now() + delay > deadline) {
          say(`task ${taskId}: its end was not recorded by the server: ${(error as Error).message}`);
          return;
        }
        await sleep(delay, new AbortController().signal);
      }
    }
  }
}

/** The token from --token-file, --token or $COFFER_AGENT_TOKEN. */
async function tokenOf(options: AgentCommandOptions, env: NodeJS.ProcessEnv): Promise<string> {
  let token: string | undefined;
  if (options.tokenFile !== undefined) {
    token = (await readFile(options.tokenFile, 'utf8').catch((error: Error) => {
      throw new CofferError('E_USAGE', `--token-file ${options.tokenFile}: ${error.message}`);
    })).trim();
  } else token = options.token ?? env.COFFER_AGENT_TOKEN?.trim();
  if (token === undefined || token === '') throw new CofferError('E_USAGE', 'no agent token: give --token-file FILE (or $COFFER_AGENT_TOKEN); coffer agent token add NAME makes one on the server');
  return token;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export interface AgentTokenOptions {
  data?: string;
  expires?: string;
  json?: boolean;
}

/** The server's agents folder, from --data or $COFFER_DATA. */
async function agentsFolder(options: AgentTokenOptions, env: NodeJS.ProcessEnv): Promise<string> {
  const data = options.data ?? (env.COFFER_DATA || undefined);
  if (data === undefined) throw new CofferError('E_USAGE', 'give the server\'s data directory: --data DIR');
  const { agentTokensFile } = await import('../../server/index.js');
  return dirname(agentTokensFile(data));
}

/** `coffer agent token add NAME --data DIR`: prints the secret once. */
export async function agentTokenAddCommand(name: string, options: AgentTokenOptions, context: CommandContext): Promise<number> {
  const data = options.data ?? (context.env.COFFER_DATA || undefined);
  if (data === undefined) throw new CofferError('E_USAGE', 'give the server\'s data directory: --data DIR');
  const { addAgentToken, parseLifetime } = await import('../../server/index.js');
  const expires = options.expires === undefined ? null : new Date(Date.now() + parseLifetime(options.expires));
  const secret = await addAgentToken(data, name, expires);
  if (options.json) context.stdout.write(`${JSON.stringify({ name, token: secret, expires: expires?.toISOString() ?? null })}\n`);
  else {
    context.stdout.write(`${secret}\n`);
    context.stderr.write(`agent token ${name} added${expires === null ? '' : ` (expires ${expires.toISOString()})`}; shown only this once: on the agent, coffer agent --server URL --token-file FILE\n`);
  }
  return 0;
}

/** `coffer agent token list --data DIR`. */
export async function agentTokenListCommand(options: AgentTokenOptions, context: CommandContext): Promise<number> {
  return tokenListCommand({ stateDir: await agentsFolder(options, context.env), ...(options.json === undefined ? {} : { json: options.json }) }, context);
}

/** `coffer agent token remove NAME --data DIR`: refused from the next request on; the server removes its keys at its next start (DELETE /api/v1/agents/NAME does at once). */
export async function agentTokenRemoveCommand(name: string, options: AgentTokenOptions, context: CommandContext): Promise<number> {
  return tokenRemoveCommand(name, { stateDir: await agentsFolder(options, context.env), ...(options.json === undefined ? {} : { json: options.json }) }, context);
}
