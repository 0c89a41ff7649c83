/**
 * For the black-box tests of `coffer server` (never imported by the product): start the real
 * binary as a child process on an ephemeral port, read what it prints (URL, fingerprint,
 * one-time password), talk HTTPS to it trusting only the certificate it made, and always
 * stop it (SIGTERM, then SIGKILL), even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root from dist/src/server/http/. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const COFFER_BIN = join(PROJECT_ROOT, 'bin', 'coffer.js');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  /** The certificate the server presents (PEM), trusted by {@link ServerProcess.request}. */
  ca: string;
  request(method: string, path: string, options?: RequestOptions): Promise<Response>;
  /** A GET whose body is bytes (a download, an archive; {@link request} decodes text). */
  download(path: string, options?: { token?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<Download>;
  /** SIGTERM and wait for the exit (SIGKILL after `timeoutMs`); idempotent. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body text (sent as JSON content type), for malformed-input tests. */
  rawBody?: string;
  headers?: Record<string, string>;
  token?: string;
  /** A cookie jar: sent, and updated from Set-Cookie. */
  jar?: Map<string, string>;
}

export interface Download {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** Runs a `coffer` command to its end. */
export function runCoffer(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [COFFER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`coffer ${args.join(' ')} still running after ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `coffer server args…` and resolves once it prints `listening on URL`. */
export async function startServer(args: string[], timeoutMs = 30_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [COFFER_BIN, 'server', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const stop = (ms = 10_000) => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      const result = await exited;
      clearTimeout(timer);
      return result;
    })();
    return stopping;
  };
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (url === undefined) {
    url = /listening on (\S+)/.exec(out)?.[1];
    if (url !== undefined) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`coffer server ${args.join(' ')} did not start:\n${out}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const dataDir = args[args.indexOf('--data') + 1] as string;
  const ca = url.startsWith('https:') ? await readFile(join(dataDir, 'tls', 'cert.pem'), 'utf8') : '';
  return { child, url, ca, stdout: () => out, stderr: () => err, request: (method, path, options) => send(url as string, ca, method, path, options ?? {}), download: (path, options) => fetchBytes(url as string, ca, path, options ?? {}), stop };
}

function send(base: string, ca: string, method: string, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let payload: string | undefined = options.rawBody;
  if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.jar !== undefined && options.jar.size > 0) headers.cookie = [...options.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, base), { method, headers, ca, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        for (const cookie of [res.headers['set-cookie'] ?? []].flat()) {
          const [pair] = cookie.split(';');
          const [name, ...value] = (pair ?? '').split('=');
          if (name !== undefined && options.jar !== undefined) {
            if (value.join('=') === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) options.jar.delete(name.trim());
            else options.jar.set(name.trim(), value.join('='));
          }
        }
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function fetchBytes(base: string, ca: string, path: string, options: { token?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<Download> {
  const headers: Record<string, string> = { ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }), ...(options.headers ?? {}) };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, base), { method: 'GET', ca, headers, timeout: options.timeoutMs ?? 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${options.timeoutMs ?? 60_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COFFER_')) env[k] = v;
  return env;
}

/**
 * The first administrator's way in: log in with the one-time password the server printed,
 * change it to `password` (as the server requires first), and make an Admin token on `/`.
 * Returns the token's secret.
 */
export async function firstAdminToken(server: ServerProcess, password: string): Promise<string> {
  const oneTime = /one-time password (\S+)/.exec(server.stdout())?.[1];
  if (oneTime === undefined) throw new Error(`the server printed no one-time password:\n${server.stdout()}`);
  const jar = new Map<string, string>();
  const login = await server.request('POST', '/api/v1/auth/login', { body: { user: 'admin', password: oneTime }, jar });
  const headers = { 'x-csrf-token': login.json.csrfToken as string };
  const changed = await server.request('POST', '/api/v1/auth/password', { jar, headers, body: { current: oneTime, new: password } });
  if (changed.status !== 204) throw new Error(`changing the one-time password answered ${changed.status}`);
  return (await server.request('POST', '/api/v1/tokens', { jar, headers, body: { name: 'admin', grants: [{ role: 'Admin', path: '/' }] } })).json.secret as string;
}
