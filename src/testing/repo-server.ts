/**
 * A real `coffer serve-repo` for integration tests: tokens made with `coffer serve-repo token
 * add` (the real command), then the server started as a child process on an ephemeral
 * loopback port, its origin and certificate fingerprint read from its `--json` line.
 * `stop()` ends it (SIGTERM, SIGKILL after 2 s); call it in `after()`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const COFFER = fileURLToPath(new URL('../../../bin/coffer.js', import.meta.url));

/** A token to create before the server starts. */
export interface TestTokenSpec {
  name: string;
  appendOnly?: boolean;
  expires?: string;
}

/** A running test repository server. */
export interface TestRepoServer {
  child: ChildProcess;
  /** `https://127.0.0.1:PORT`. */
  origin: string;
  fingerprint: string;
  stateDir: string;
  /** Secrets by token name. */
  tokens: Record<string, string>;
  /** What the server printed on stderr so far (its log). */
  log(): string;
  /** Adds one more token while the server runs. */
  addToken(spec: TestTokenSpec): Promise<string>;
  stop(): Promise<void>;
}

function cofferOnce(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [COFFER, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`coffer ${args.join(' ')}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** Starts `coffer serve-repo --repo NAME=PATH…` with the tokens given, in `stateDir`. */
export async function startTestRepoServer(options: { stateDir: string; repos: Record<string, string>; tokens: TestTokenSpec[] }): Promise<TestRepoServer> {
  const tokens: Record<string, string> = {};
  const addToken = async (spec: TestTokenSpec) => {
    const args = ['serve-repo', 'token', 'add', spec.name, '--state-dir', options.stateDir];
    if (spec.appendOnly) args.push('--append-only');
    if (spec.expires !== undefined) args.push('--expires', spec.expires);
    tokens[spec.name] = (await cofferOnce(args)).trim();
    return tokens[spec.name] as string;
  };
  for (const spec of options.tokens) await addToken(spec);
  const args = ['serve-repo', '--listen', '127.0.0.1:0', '--state-dir', options.stateDir, '--json'];
  for (const [name, path] of Object.entries(options.repos)) args.push('--repo', `${name}=${path}`);
  const child = spawn(process.execPath, [COFFER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COFFER_REPO_TOKEN: undefined } });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
    })();
    return stopping;
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`coffer serve-repo did not start in 15 s: ${stderr}`)), 15_000);
      child.stdout?.setEncoding('utf8').on('data', (text: string) => {
        out += text;
        const end = out.indexOf('\n');
        if (end >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, end));
        }
      });
      void exited.then(() => reject(new Error(`coffer serve-repo ended: ${stderr}`)));
    });
    const started = JSON.parse(line) as { origin: string; fingerprint: string };
    return { child, origin: started.origin, fingerprint: started.fingerprint, stateDir: options.stateDir, tokens, log: () => stderr, addToken, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
