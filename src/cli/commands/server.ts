import { once } from 'node:events';
import { CofferError } from '../../errors/index.js';
import { startService } from '../../server/index.js';
import type { CommandContext } from '../context.js';

export interface ServerCommandOptions {
  data?: string;
  config?: string;
  database?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  stopTimeout?: string;
  /** Commander's `--no-local-worker`: false when given. */
  localWorker?: boolean;
  name?: string;
  lease?: string;
  agentRepoListen?: string;
}

/**
 * `coffer server --data DIR [--config FILE] [--listen HOST:PORT] [--tls-cert F --tls-key F]`:
 * the long-running service (REST API, later the console and the task runner) until SIGTERM or
 * Ctrl-C, which stop it gracefully. Everything it needs to print at start (the certificate's
 * fingerprint, a first start's one-time admin password, the console URL) goes to stdout.
 */
export async function serverCommand(options: ServerCommandOptions, context: CommandContext): Promise<number> {
  if (options.data === undefined) throw new CofferError('E_USAGE', 'give the data directory: coffer server --data DIR');
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new CofferError('E_USAGE', 'give both --tls-cert and --tls-key, or neither (a self-signed certificate is made)');
  const stopTimeoutMs = options.stopTimeout === undefined ? undefined : Number(options.stopTimeout) * 1000;
  if (stopTimeoutMs !== undefined && !(Number.isFinite(stopTimeoutMs) && stopTimeoutMs >= 0)) throw new CofferError('E_USAGE', `--stop-timeout ${options.stopTimeout}: a number of seconds`);
  const database = options.database ?? (context.env.COFFER_DATABASE || undefined);
  const leaseMs = options.lease === undefined ? undefined : Number(options.lease) * 1000;
  if (leaseMs !== undefined && !(Number.isFinite(leaseMs) && leaseMs > 0)) throw new CofferError('E_USAGE', `--lease ${options.lease}: a number of seconds`);
  const service = await startService({
    dataDir: options.data,
    ...(options.config === undefined ? {} : { configFile: options.config }),
    ...(database === undefined ? {} : { database }),
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(options.tlsCert === undefined || options.tlsKey === undefined ? {} : { tls: { cert: options.tlsCert, key: options.tlsKey } }),
    insecureHttp: options.insecureHttp === true,
    ...(options.localWorker === false ? { localWorker: false } : {}),
    ...(options.name === undefined ? {} : { serverName: options.name }),
    ...(leaseMs === undefined ? {} : { leaseMs }),
    ...(options.agentRepoListen === undefined ? {} : { agentRepoListen: options.agentRepoListen }),
    print: (line) => context.stdout.write(`${line}\n`),
    logError: (error, where) => context.stderr.write(`coffer server: internal error in ${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`),
  });
  if (!context.signal.aborted) await once(context.signal, 'abort');
  context.stdout.write('stopping: no new requests; waiting for running ones\n');
  await service.stop(stopTimeoutMs);
  context.stdout.write('stopped\n');
  return 0;
}
