/**
 * The composition root of `coffer server`: opens the state database in the data directory,
 * loads the configuration (writing a commented sample at first start), starts the task
 * runner, the scheduler and the notifier from it (service-parts.ts), makes the first
 * administrator and the HTTPS certificate when missing, builds the Fastify app (with
 * `/metrics` when configured), listens, and then lets the scheduler fire.
 * Stopping is graceful: the listener closes, in-flight requests get until the deadline to
 * finish, event streams end, the drain hooks run (the scheduler stops firing, running backups
 * finish or are cancelled cleanly, notifications are handed over), then everything is closed.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CofferError } from '../errors/index.js';
import { makeFolders } from '../native/index.js';
import { AuditLog } from './audit/index.js';
import { Authenticator, ensureFirstAdmin, FIRST_ADMIN, LoginThrottle, SessionStore, TokenStore, UserStore } from './auth/index.js';
import { ConfigStore } from './config/index.js';
import { ApprovalStore, buildApp, loadOrCreateCertificate, type RouteGroup, type ServiceContext } from './http/index.js';
import { RepositoryCatalog } from './inventory/index.js';
import { startServiceParts, type ServiceParts, type ServicePartsOptions } from './service-parts.js';
import { openStateDatabase, type StateDatabase } from './state/index.js';
import { DEFAULT_LEASE_MS, idleInTransactionFor, WorkerRegistry } from './cluster/index.js';
import { openAgentService, type AgentService } from './agents/index.js';

export const SERVICE_VERSION = '0.1.0';
/** The default address: every interface, HTTPS. */
export const DEFAULT_LISTEN = '0.0.0.0:8443';
/** How long in-flight requests and drain hooks get at shutdown by default. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export interface ServiceOptions {
  dataDir: string;
  /** Default DIR/coffer.yaml. */
  configFile?: string;
  /** The state database: `postgres://…` (several servers and workers share it, #10) or an SQLite file; default DIR/state.db. */
  database?: string;
  /** HOST:PORT (port 0: any free port); default {@link DEFAULT_LISTEN}. */
  listen?: string;
  /** The administrator's own certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Plain HTTP: only on a loopback address (tests, or behind a local TLS proxy). */
  insecureHttp?: boolean;
  /** One line of output for the administrator (the CLI's stdout). */
  print: (line: string) => void;
  /** Unexpected errors (the CLI's stderr). */
  logError?: (error: unknown, where: string) => void;
  /** Route groups added by other parts of the server (tasks, notifications). */
  routeGroups?: readonly RouteGroup[];
  now?: () => number;
  /** Worker process options (tests shorten the cancel grace). */
  worker?: ServicePartsOptions['worker'];
  /**
   * With a PostgreSQL database: false runs no task here (API and scheduler only; `coffer
   * worker` processes run them). Default true: this server also takes tasks from the shared
   * queue. SQLite: always the single-process runner (false is refused).
   */
  localWorker?: boolean;
  /** This server's name among the servers and workers (default server-HOSTNAME-PID). */
  serverName?: string;
  /** With a PostgreSQL database and a local worker: the lease of the tasks it takes, ms (default 30 s). */
  leaseMs?: number;
  /** HOST:PORT of the agent repository server (docs/agent.md); default the API's host and port + 1 (port 0 with port 0). */
  agentRepoListen?: string;
}

/** Runs during a graceful stop, before the state is closed; gets the time left (ms). */
export type DrainHook = (timeLeftMs: number) => Promise<void>;

export interface RunningService {
  /** The base URL, e.g. https://127.0.0.1:8443. */
  readonly url: string;
  readonly port: number;
  readonly context: ServiceContext;
  readonly app: FastifyInstance;
  readonly state: StateDatabase;
  /** The task runner, the scheduler and the notifier. */
  readonly parts: ServiceParts;
  /** Registers work to finish at stop (the task runner: no new task, running ones end or are cancelled). */
  onDrain(hook: DrainHook): void;
  /** Stops accepting, lets in-flight requests and drain hooks finish within `timeoutMs`, closes. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const now = options.now ?? Date.now;
  const { host, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  if (options.insecureHttp === true && !isLoopback(host)) {
    throw new CofferError('E_USAGE', `--insecure-http is refused on ${host}: plain HTTP only on a loopback address (127.0.0.1, ::1, localhost)`);
  }
  if (options.insecureHttp === true && options.tls !== undefined) throw new CofferError('E_USAGE', '--insecure-http and --tls-cert/--tls-key exclude each other');
  await makeFolders(options.dataDir, 0o700);
  const state = await openStateDatabase({ url: options.database ?? join(options.dataDir, 'state.db'), now, idleInTransactionMs: idleInTransactionFor(options.leaseMs ?? DEFAULT_LEASE_MS) });
  if (state.dialect === 'sqlite' && options.localWorker === false) {
    await state.close();
    throw new CofferError('E_USAGE', '--no-local-worker needs the shared PostgreSQL state database (--database postgres://…): with SQLite this server is the only one that runs tasks');
  }
  const cluster = state.dialect !== 'postgres' || options.database === undefined ? undefined
    : { url: options.database, name: options.serverName ?? `server-${hostname()}-${process.pid}`, version: SERVICE_VERSION, localWorker: options.localWorker !== false, ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }) };
  let catalog: RepositoryCatalog | undefined;
  let parts: ServiceParts | undefined;
  let agents: AgentService | undefined;
  try {
    const db = state.db;
    const configFile = options.configFile ?? join(options.dataDir, 'coffer.yaml');
    const { store: config, created } = await ConfigStore.open(db, configFile, now);
    options.print(`coffer server ${SERVICE_VERSION}: data in ${options.dataDir}`);
    options.print(`configuration: ${configFile} (version ${config.version}${created ? ', written now from a commented sample' : ''})`);
    // Restores through the API write only in allowed folders; this one unless the config names others.
    const defaultRestores = join(options.dataDir, 'restores');
    await makeFolders(defaultRestores, 0o700);
    const users = new UserStore(db, now);
    const sessions = new SessionStore(db, now);
    const tokens = new TokenStore(db, now);
    const audit = new AuditLog(db, now);
    catalog = new RepositoryCatalog(() => config.config.repositories ?? [], db, now);
    const logError = options.logError ?? (() => {});
    const approvals = new ApprovalStore(db, now);
    agents = await openAgentService({ dataDir: options.dataDir, config: () => config.config, log: options.print });
    parts = await startServiceParts({
      remote: agents.hub,
      db, config, catalog, print: options.print, logError, dataDir: options.dataDir,
      requestApproval: (operation, args, summary, requester) => approvals.request(operation, args, summary, requester),
      ...(options.worker === undefined ? {} : { worker: options.worker }),
      ...(cluster === undefined ? {} : { cluster }),
    });
    if (cluster !== undefined) options.print(`shared state database: ${state.label}; ${cluster.localWorker ? `this server also runs tasks, as worker ${cluster.name}` : 'API and scheduler only (--no-local-worker): coffer worker processes run the tasks'}`);
    const metricsRoutes = await parts.metricsRoutes();
    const context: ServiceContext = {
      users,
      sessions,
      tokens,
      authenticator: new Authenticator(users, sessions, tokens),
      throttle: new LoginThrottle(now),
      audit,
      config,
      catalog,
      approvals,
      work: { runner: parts.runner, scheduler: parts.scheduler },
      ...(cluster === undefined ? {} : { workers: new WorkerRegistry(db) }),
      agents: agents.directory,
      now,
      restoreTargets: () => config.config.restore?.['allowed-targets'] ?? [defaultRestores],
      secureCookies: options.insecureHttp !== true,
      version: SERVICE_VERSION,
    };

    const oneTimePassword = await ensureFirstAdmin(users);
    if (oneTimePassword !== undefined) {
      await audit.record({ actor: 'system', address: '-', action: 'user.create', target: `/users/${FIRST_ADMIN}`, outcome: 'success', details: { reason: 'first start', grants: [{ role: 'Admin', path: '/' }] } });
    }

    let https: { key: string; cert: string } | undefined;
    if (options.insecureHttp !== true) {
      const tls = await loadOrCreateCertificate(options.dataDir, options.tls);
      https = { key: tls.key, cert: tls.cert };
      options.print(`TLS certificate: ${tls.certFile}${tls.created ? ' (self-signed, made now)' : ''}`);
      options.print(`  SHA-256 fingerprint: ${tls.fingerprint}`);
    } else {
      options.print('WARNING: plain HTTP (--insecure-http): only for tests or behind a local TLS proxy');
    }

    const app = await buildApp(context, {
      server: { ...(https === undefined ? {} : { https }), forceCloseConnections: 'idle' },
      routeGroups: [...(metricsRoutes === undefined ? [] : [metricsRoutes]), agents.routes, ...(options.routeGroups ?? [])],
      ...(options.logError === undefined ? {} : { logError: options.logError }),
    });
    try {
      await app.listen({ host, port });
    } catch (error) {
      await app.close();
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the address is in use (another coffer server?)' : code === 'EADDRNOTAVAIL' ? 'no interface of this machine has that address' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : String((error as Error).message);
      throw new CofferError('E_ADDRESS_IN_USE', `cannot listen on ${options.listen ?? DEFAULT_LISTEN}: ${why}`, { cause: error });
    }
    const address = app.server.address();
    const boundPort = typeof address === 'object' && address !== null ? address.port : port;
    const shownHost = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
    const url = `${https === undefined ? 'http' : 'https'}://${shownHost}:${boundPort}`;
    if (https !== undefined) {
      const agentListen = options.agentRepoListen === undefined ? { host, port: port === 0 ? 0 : port + 1 } : parseListen(options.agentRepoListen);
      try {
        const agentPort = await agents.serveRepositories({ ...agentListen, tls: https });
        options.print(`agent repository server: port ${agentPort} (docs/agent.md)`);
      } catch (error) {
        // Asked for: a hard error. The default (the API's port + 1) taken: the API still serves, agents' tasks fail saying why.
        if (options.agentRepoListen === undefined) {
          options.print(`warning: no agent repository server: ${agentListen.host}:${agentListen.port} cannot be listened on (${(error as Error).message}); give --agent-repo-listen HOST:PORT for agents`);
        } else {
          await app.close();
          throw new CofferError('E_ADDRESS_IN_USE', `cannot listen for agents on ${options.agentRepoListen}: ${(error as Error).message}`, { cause: error });
        }
      }
    } else {
      options.print('agents: no agent repository server without TLS (--insecure-http); agents\' tasks fail');
    }
    if (oneTimePassword !== undefined) {
      options.print(`first start: created user ${FIRST_ADMIN} with the one-time password ${oneTimePassword}`);
      options.print('  (shown only now: log in and change it; until then the account can do nothing else)');
    }
    options.print(`console: ${url}/`);
    options.print(`API reference: ${url}/api/v1/docs`);
    options.print(`listening on ${url}`);

    const openParts = parts;
    openParts.startScheduling();
    const openAgents = agents;
    const drains: DrainHook[] = [(timeLeftMs) => openParts.drain(timeLeftMs), () => openAgents.close()];
    let stopping: Promise<void> | undefined;
    const openCatalog = catalog;
    return {
      url,
      port: boundPort,
      context,
      app,
      state,
      parts,
      onDrain: (hook) => void drains.push(hook),
      stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
        stopping ??= (async () => {
          const deadline = Date.now() + timeoutMs;
          const closing = app.close();
          const drained = Promise.allSettled(drains.map((hook) => hook(Math.max(0, deadline - Date.now()))));
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now()))));
          const outcome = await Promise.race([Promise.all([closing, drained]).then(() => 'done' as const), late]);
          clearTimeout(timer);
          if (outcome === 'late') {
            options.print(`stop: requests still running after ${timeoutMs} ms; closing their connections`);
            app.server.closeAllConnections();
            await closing;
          }
          await openCatalog.close();
          await state.close();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await agents?.close();
    await parts?.drain(0);
    await catalog?.close();
    await state.close();
    throw error;
  }
}

/** `HOST:PORT`, `[v6]:PORT`. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) throw new CofferError('E_USAGE', `--listen ${text}: write HOST:PORT, e.g. 0.0.0.0:8443 or 127.0.0.1:0`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
