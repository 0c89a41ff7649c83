/**
 * For the console's end-to-end test: the real `coffer` binary as child processes — one-shot
 * commands (init, backup) and `coffer server` on an ephemeral port, read until it prints its
 * URL and one-time password — and HTTPS calls to it trusting only the certificate it made.
 * Every process has a deadline and `stop()` (SIGTERM, then SIGKILL) is idempotent.
 * (src/server/http/server-harness.ts does the same for the server's own tests; it is not
 * exported through server/index.ts, so the console's test carries this small copy.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from dist/src/web/tests/. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const COFFER = join(PROJECT_ROOT, 'bin', 'coffer.js');

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COFFER_')));
}

/** Runs `coffer args…` to its end; rejects on a non-zero exit or after `timeoutMs`. */
export function coffer(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [COFFER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`coffer ${args.join(' ')}: ${signal ?? `exit ${code}`}: ${err}`));
    });
  });
}

export interface CofferServer {
  url: string;
  /** The first start's one-time admin password. */
  oneTimePassword: string;
  /** PEM of the self-signed certificate it made. */
  ca: string;
  output(): string;
  /** One HTTPS request; `cookie` and `csrf` authenticate as a console session, `token` as an API token. */
  request(method: string, path: string, options?: { body?: unknown; cookie?: string; csrf?: string; token?: string }): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
}

export async function startCofferServer(dataDir: string, timeoutMs = 30_000): Promise<CofferServer> {
  const child: ChildProcess = spawn(process.execPath, [COFFER, 'server', '--data', dataDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while ((url = /listening on (\S+)/.exec(out)?.[1]) === undefined) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`coffer server did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const oneTimePassword = /one-time password (\S+)/.exec(out)?.[1];
  if (oneTimePassword === undefined) {
    await stop();
    throw new Error(`coffer server printed no one-time password (not a first start?):\n${out}`);
  }
  const ca = await readFile(join(dataDir, 'tls', 'cert.pem'), 'utf8');
  const base = url;
  const request: CofferServer['request'] = (method, path, options = {}) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      if (options.cookie !== undefined) headers.cookie = options.cookie;
      if (options.csrf !== undefined) headers['x-csrf-token'] = options.csrf;
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      const req = httpsRequest(new URL(path, base), { method, headers, ca, timeout: 15_000 }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text === '' ? undefined : JSON.parse(text) }));
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)));
      req.on('error', reject);
      req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
    });
  return { url, oneTimePassword, ca, output: () => out, request, stop };
}
