/**
 * One task of the agent: the file backup the server assigned (docs/agent.md), run by the same
 * code as `coffer backup --files` into the repository through the agent repository server, with
 * the agent's token and trust and the passphrase of the agent's own key, which lives only in
 * this process's memory for the backup. What the backup prints becomes the task's log and
 * result; `signal` aborts it (a cancel from the server).
 */
import { Writable } from 'node:stream';
import type { AgentBackupReport, Assignment } from '../../server/index.js';
import type { CommandContext } from '../context.js';
import { backupFilesCommand } from '../commands/backup-files.js';

export interface AssignmentContext {
  /** The host the agent reaches the server at. */
  serverHost: string;
  token: string;
  fingerprint?: string;
  cacert?: string;
  /** One log line for the task. */
  log: (level: 'info' | 'warning' | 'error', line: string) => void;
  signal: AbortSignal;
  /** The agent's own environment (HOME, PATH, the cache's folder). */
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
}

/** Runs the backup; resolves with its figures. @throws CofferError as `coffer backup --files` does. */
export async function runAssignment(task: Assignment, how: AssignmentContext): Promise<AgentBackupReport> {
  const out: string[] = [];
  const stdout = new Writable({ write: (chunk: Buffer, _encoding, done) => (out.push(chunk.toString('utf8')), done()) });
  let partial = '';
  const stderr = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') how.log('warning', warningText(line));
      done();
    },
  });
  const host = how.serverHost.includes(':') ? `[${how.serverHost}]` : how.serverHost;
  // Only what the backup needs: never a passphrase or repository of the agent's own environment.
  const env: NodeJS.ProcessEnv = {
    ...(how.env.HOME === undefined ? {} : { HOME: how.env.HOME }),
    ...(how.env.PATH === undefined ? {} : { PATH: how.env.PATH }),
    ...(how.env.XDG_CACHE_HOME === undefined ? {} : { XDG_CACHE_HOME: how.env.XDG_CACHE_HOME }),
    COFFER_REPO_TOKEN: how.token,
    ...(task.repository.passphrase === null ? {} : { COFFER_PASSWORD: task.repository.passphrase }),
  };
  const context: CommandContext = { stdout: stdout as unknown as NodeJS.WriteStream, stderr: stderr as unknown as NodeJS.WriteStream, stdin: how.stdin, env, signal: how.signal };
  how.log('info', `backing up ${task.paths.join(', ')} on the agent into repository ${task.repository.name}`);
  await backupFilesCommand(task.paths, {
    repo: `https://${host}:${task.repository.port}/${task.repository.name}`,
    json: true,
    host: task.vm,
    tag: task.tags,
    exclude: task.exclude,
    ...(how.fingerprint === undefined ? {} : { repoFingerprint: how.fingerprint }),
    ...(how.cacert === undefined ? {} : { cacert: how.cacert }),
    ...(task.rates.repositoryWrite === undefined ? {} : { limitUpload: String(Math.max(1, Math.floor(task.rates.repositoryWrite))) }),
  }, context);
  const printed = JSON.parse(out.join('').trim().split('\n').at(-1) ?? '{}') as {
    id: string; parent: string | null; time: string; entries: number; warnings: { path: string; message: string }[];
    bytesLogical: number; bytesRead: number; bytesNew: number; bytesStored: number; durationMs: number;
  };
  return {
    snapshot: printed.id, parent: printed.parent, snapshotTime: printed.time, entries: printed.entries,
    bytesLogical: printed.bytesLogical, bytesRead: printed.bytesRead, bytesNew: printed.bytesNew, bytesStored: printed.bytesStored,
    durationMs: Math.round(printed.durationMs), warnings: printed.warnings.map((w) => `${w.path}: ${w.message}`),
  };
}

/** `{"type":"warning","path":…,"message":…}` (what --json prints on stderr) as a line of text. */
function warningText(line: string): string {
  try {
    const parsed = JSON.parse(line) as { type?: unknown; path?: unknown; message?: unknown };
    if (parsed.type === 'warning') return `${String(parsed.path)}: ${String(parsed.message)}`;
  } catch {
    // plain text
  }
  return line.slice(0, 4000);
}
