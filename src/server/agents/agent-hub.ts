/**
 * The agents as the server sees them (docs/agent.md): who is online, what each registered,
 * and the backups handed to them. It is the task runner's {@link RemoteWorkers}: a task of a
 * VM whose source is `{agent: NAME}` becomes a {@link RemoteTask} that the agent's long poll
 * takes; the agent's events and end reach the runner through the task's listener and handle,
 * so the runner records, retries and notifies as for a local worker.
 *
 * Online: a poll of the agent is open, or one was answered less than `offlineAfterMs` ago.
 * A watchdog (every second) ends a handed-out task whose agent went offline (E_AGENT_LOST),
 * or whose agent, polling again, no longer lists it as running (it restarted).
 */
import type { VmBackupSpec } from '../../backup/index.js';
import type { RemoteWorkers } from '../tasks/index.js';
import type { WorkerListener, WorkerRates } from '../worker/index.js';
import type { AgentEnd } from './agent-result.js';
import { RemoteTask, type Assignment } from './remote-task.js';

/** What an agent says of itself at `hello`. */
export interface AgentHello {
  hostname: string;
  os: string;
  version: string;
}

/** An agent as `GET /api/v1/agents` lists it. */
export interface AgentInfo {
  name: string;
  online: boolean;
  lastSeen: string | null;
  hello: (AgentHello & { at: string }) | null;
  /** The task it runs now. */
  task: string | null;
}

/** What a poll answers. */
export interface PollAnswer {
  assign?: Assignment;
  cancel: string[];
}

interface AgentState {
  lastSeen: number;
  openPolls: number;
  hello: (AgentHello & { at: string }) | null;
  waiters: Set<() => void>;
}

export interface AgentHubOptions {
  /** `agents.offline-after` (ms), read when needed so a config edit applies. */
  offlineAfterMs: () => number;
  /** `agents.wait-offline` (ms). */
  waitOfflineMs: () => number;
  /** The agent repository server's port (undefined: not serving, tasks fail). */
  repoPort: () => number | undefined;
  /** The passphrase of the agent's key in a repository (agent-keys.ts). */
  passphraseFor: (agent: string, repository: string) => Promise<string | null>;
  now?: () => number;
}

/** After its delivery, a task missing from its agent's `running` list for this long is lost (the agent restarted). */
const FORGOTTEN_AFTER_MS = 5000;

export class AgentHub implements RemoteWorkers {
  private readonly agents = new Map<string, AgentState>();
  private readonly tasks = new Map<string, RemoteTask>();
  private readonly now: () => number;
  private readonly watchdog: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: AgentHubOptions) {
    this.now = options.now ?? Date.now;
    this.watchdog = setInterval(() => this.checkLiveness(), 1000);
    this.watchdog.unref();
  }

  agentOf(spec: unknown): string | undefined {
    const source = (spec as Partial<VmBackupSpec> | null)?.source;
    return source !== undefined && 'agent' in source && typeof source.agent === 'string' ? source.agent : undefined;
  }

  /** `agents.offline-after` now, ms. */
  offlineAfterMs(): number {
    return this.options.offlineAfterMs();
  }

  online(agent: string): boolean {
    const state = this.agents.get(agent);
    return state !== undefined && (state.openPolls > 0 || this.now() - state.lastSeen < this.options.offlineAfterMs());
  }

  waitDeadline(created: number): number {
    return created + this.options.waitOfflineMs();
  }

  offlineError(agent: string): { code: string; message: string } {
    const seen = this.agents.get(agent)?.lastSeen;
    const since = seen === undefined ? 'never connected since the server started' : `offline since ${new Date(seen).toISOString()}`;
    return { code: 'E_AGENT_OFFLINE', message: `agent ${agent} was ${since}; the task waited until its window closed (or agents.wait-offline ran out)` };
  }

  start(task: { taskId: string; spec: unknown; repository: string; rates: WorkerRates }, listener: WorkerListener): RemoteTask {
    const spec = task.spec as VmBackupSpec;
    const agent = this.agentOf(spec) as string;
    const remote = new RemoteTask(agent, task.taskId, listener, () => this.wake(agent), this.now);
    this.tasks.set(task.taskId, remote);
    void remote.ended.finally(() => {
      if (this.tasks.get(task.taskId) === remote) this.tasks.delete(task.taskId);
    });
    void this.prepare(remote, spec, task.repository, task.rates);
    return remote;
  }

  private async prepare(remote: RemoteTask, spec: VmBackupSpec, repository: string, rates: WorkerRates): Promise<void> {
    const source = spec.source as { agent: string; files: { paths: readonly string[]; exclude?: readonly string[] } };
    const port = this.options.repoPort();
    if (port === undefined) return remote.fail('E_USAGE', 'the server serves no repository to agents (it runs without TLS, or its agent repository address could not be listened on: see its start-up output and --agent-repo-listen)');
    try {
      const passphrase = await this.options.passphraseFor(remote.agent, repository);
      remote.prepared({
        taskId: remote.taskId, vm: spec.vm, host: spec.host ?? spec.vm, job: spec.job ?? null,
        tags: [...(spec.tags ?? []), ...(spec.job === undefined ? [] : [`job:${spec.job}`])],
        paths: [...source.files.paths], exclude: [...(source.files.exclude ?? [])],
        repository: { port, name: repository, passphrase }, rates,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      remote.fail(typeof code === 'string' && code.startsWith('E_') ? code : 'E_USAGE', `cannot give agent ${remote.agent} a key in repository ${repository}: ${(error as Error).message}`);
    }
  }

  /** An agent introduced itself. */
  hello(agent: string, hello: AgentHello): void {
    const state = this.stateOf(agent);
    state.hello = { ...hello, at: new Date(this.now()).toISOString() };
    state.lastSeen = this.now();
  }

  /**
   * The long poll: answers at once with a task to take or tasks to stop, else waits up to
   * `waitMs` (or until `closed` fires: the connection went away). `running`: the tasks the
   * agent runs now.
   */
  async poll(agent: string, running: readonly string[], waitMs: number, closed: AbortSignal): Promise<PollAnswer> {
    const state = this.stateOf(agent);
    state.lastSeen = this.now();
    this.checkRunning(agent, running);
    let answer = this.answerFor(agent, running);
    if (answer !== undefined || waitMs <= 0 || this.closed) return answer ?? { cancel: [] };
    state.openPolls += 1;
    try {
      answer = await new Promise<PollAnswer | undefined>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          state.waiters.delete(check);
          closed.removeEventListener('abort', done);
          resolve(this.answerFor(agent, running));
        };
        const check = () => {
          if (this.hasNews(agent, running)) done();
        };
        const timer = setTimeout(done, waitMs);
        state.waiters.add(check);
        closed.addEventListener('abort', done);
      });
    } finally {
      state.openPolls -= 1;
      state.lastSeen = this.now();
    }
    return answer ?? { cancel: [] };
  }

  /** Progress and log lines of a task; false when the agent does not hold it (any more). */
  events(agent: string, taskId: string, body: { progress?: { done: number; total: number }; log?: { level: 'info' | 'warning' | 'error'; line: string }[] }): boolean {
    const task = this.heldBy(agent, taskId);
    if (task === undefined) return false;
    this.stateOf(agent).lastSeen = this.now();
    for (const entry of body.log ?? []) task.listener.onLog?.(entry.level, entry.line);
    if (body.progress !== undefined) task.listener.onProgress?.({ done: body.progress.done, total: body.progress.total });
    return true;
  }

  /** The task's end; false when the agent does not hold it (any more). */
  end(agent: string, taskId: string, end: AgentEnd): boolean {
    const task = this.heldBy(agent, taskId);
    if (task === undefined) return false;
    this.stateOf(agent).lastSeen = this.now();
    task.finishedBy(end);
    return true;
  }

  /** The agent's token was revoked: its tasks fail saying so (the agent, refused, stops them), it is forgotten. */
  revoke(agent: string): void {
    for (const task of this.tasks.values()) if (task.agent === agent) task.fail('E_AGENT_REFUSED', `agent ${agent} was revoked while the task was handed to it; no snapshot of it is recorded`);
    // Its open poll answers now: the next request is refused.
    this.wake(agent);
    this.agents.delete(agent);
  }

  list(names: readonly string[]): AgentInfo[] {
    return names.map((name) => {
      const state = this.agents.get(name);
      const task = [...this.tasks.values()].find((t) => t.agent === name && t.state === 'delivered');
      return {
        name,
        online: this.online(name),
        lastSeen: state === undefined ? null : new Date(state.lastSeen).toISOString(),
        hello: state?.hello ?? null,
        task: task?.taskId ?? null,
      };
    });
  }

  /** The server stops: open polls answer now, new ones at once (the agents reconnect to the next server). */
  close(): void {
    this.closed = true;
    clearInterval(this.watchdog);
    for (const state of this.agents.values()) for (const waiter of state.waiters) waiter();
  }

  private stateOf(agent: string): AgentState {
    let state = this.agents.get(agent);
    if (state === undefined) {
      state = { lastSeen: this.now(), openPolls: 0, hello: null, waiters: new Set() };
      this.agents.set(agent, state);
    }
    return state;
  }

  private heldBy(agent: string, taskId: string): RemoteTask | undefined {
    const task = this.tasks.get(taskId);
    return task !== undefined && task.agent === agent && task.state === 'delivered' ? task : undefined;
  }

  /** Tasks to stop: the agent runs them, but the server no longer counts on them, or asked for a cancel. */
  private cancelsFor(agent: string, running: readonly string[]): string[] {
    return running.filter((id) => {
      const task = this.heldBy(agent, id);
      return task === undefined || task.cancelRequested;
    });
  }

  private hasNews(agent: string, running: readonly string[]): boolean {
    return this.cancelsFor(agent, running).length > 0 || [...this.tasks.values()].some((t) => t.agent === agent && t.state === 'ready');
  }

  private answerFor(agent: string, running: readonly string[]): PollAnswer | undefined {
    const cancel = this.cancelsFor(agent, running);
    // One task at a time per agent: the per-host limit says the same for a host of one machine.
    const busy = running.some((id) => this.heldBy(agent, id) !== undefined);
    const next = busy ? undefined : [...this.tasks.values()].find((t) => t.agent === agent && t.state === 'ready');
    if (next === undefined && cancel.length === 0) return undefined;
    return { ...(next === undefined ? {} : { assign: next.delivered() }), cancel };
  }

  /** A delivered task the agent, polling again, no longer runs: it restarted and lost it. */
  private checkRunning(agent: string, running: readonly string[]): void {
    for (const task of this.tasks.values()) {
      if (task.agent !== agent || task.state !== 'delivered' || running.includes(task.taskId)) continue;
      if (this.now() - task.deliveredAt < FORGOTTEN_AFTER_MS) continue;
      task.fail('E_AGENT_LOST', `agent ${agent} no longer runs the task (it restarted?); no snapshot of it was saved`);
    }
  }

  /** Ends the handed-out tasks whose agent went offline (the watchdog calls it every second). */
  checkLiveness(): void {
    for (const task of this.tasks.values()) {
      if (task.state === 'ended' || this.online(task.agent)) continue;
      const seen = this.agents.get(task.agent)?.lastSeen;
      const when = seen === undefined ? '' : ` (last heard from at ${new Date(seen).toISOString()})`;
      task.fail('E_AGENT_LOST', task.state === 'delivered'
        ? `agent ${task.agent} stopped answering while it ran the backup${when}; the manifest is written last, so no snapshot of it was saved`
        : `agent ${task.agent} went offline before it took the task${when}`);
    }
  }

  private wake(agent: string): void {
    for (const waiter of [...(this.agents.get(agent)?.waiters ?? [])]) waiter();
  }
}
