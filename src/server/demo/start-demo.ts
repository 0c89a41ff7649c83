/**
 * `npm start`: the Coffer service with a demo inventory, on a fresh machine in one command.
 * Builds the demo once (build-demo.ts) in `--data` (default ./demo-data, or COFFER_DEMO_DATA),
 * starts the server on 127.0.0.1 (plain HTTP: loopback only), runs the demo job once when it
 * has never run (so the console shows real results), and prints the console's URL and, at the
 * first start, the one-time admin login. Ctrl-C (or SIGTERM) stops it gracefully.
 *
 *     npm start [-- --data DIR] [-- --listen 127.0.0.1:8443]
 */
import { pathToFileURL } from 'node:url';
import { isCofferError } from '../../errors/index.js';
import { startService, type RunningService } from '../service.js';
import type { RunInfo } from '../tasks/index.js';
import { DEMO_JOB, ensureDemo } from './build-demo.js';

export const DEMO_DEFAULT_LISTEN = '127.0.0.1:8443';

/** Starts the demo; resolves with the running service (stop it with `stop()`). */
export async function startDemo(options: { dataDir: string; listen?: string; print: (line: string) => void; logError?: (error: unknown, where: string) => void }): Promise<RunningService> {
  const { layout } = await ensureDemo(options.dataDir, options.print);
  const service = await startService({
    dataDir: layout.serverDir,
    configFile: layout.configFile,
    listen: options.listen ?? DEMO_DEFAULT_LISTEN,
    insecureHttp: true,
    print: options.print,
    ...(options.logError === undefined ? {} : { logError: options.logError }),
  });
  const { runner, scheduler } = service.parts;
  if ((await runner.listRuns({ limit: 1 })).items.length === 0) {
    const run = await scheduler.runJob(DEMO_JOB, 'demo');
    options.print(`demo: the job ${DEMO_JOB} runs once now (${run.vms.join(', ')}): watch it in the console`);
    const onRun = (changed: RunInfo) => {
      if (changed.id !== run.id || changed.status === 'running') return;
      runner.events.off('run', onRun);
      options.print(`demo: the first run of ${DEMO_JOB} ended: ${changed.status} (${changed.detail ?? ''})`);
    };
    runner.events.on('run', onRun);
  }
  options.print('demo: log in with the user admin and the one-time password above (shown at the first start only)');
  return service;
}

/** Command-line entry (package.json "start"). */
async function main(argv: readonly string[]): Promise<number> {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i < 0 ? undefined : argv[i + 1];
  };
  const print = (line: string) => process.stdout.write(`${line}\n`);
  let service: RunningService;
  try {
    const listen = value('--listen');
    service = await startDemo({
      dataDir: value('--data') ?? process.env.COFFER_DEMO_DATA ?? 'demo-data',
      ...(listen === undefined ? {} : { listen }),
      print,
      logError: (error, where) => process.stderr.write(`coffer demo: internal error in ${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`),
    });
  } catch (error) {
    process.stderr.write(`coffer demo: ${isCofferError(error) ? error.message : error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  print('stopping: running backups finish or are cancelled cleanly');
  await service.stop();
  print('stopped');
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
