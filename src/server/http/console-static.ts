/**
 * The web console's files at `/` (dist/web/, built by `npm run build:web`; src/web/ holds its
 * sources and docs/console.md describes it). Everything outside /api/ is the console's:
 * - `/assets/NAME-HASH.ext`: Vite names them by content hash, so they are cached for a year
 *   (`Cache-Control: public, max-age=31536000, immutable`); gzip-compressed when the browser
 *   accepts it (compressed once, kept in memory: the files do not change while the server runs);
 * - any other existing file (none today): `no-cache`;
 * - every other path but /api/ and /metrics is a console page (`/vms/web1`…): the single-page application's
 *   index.html, `no-cache`, so a new build is picked up at the next visit.
 * HTML answers carry a strict Content-Security-Policy: scripts and everything else only from
 * this server, no inline script, no framing. Inline *styles* are allowed: the component
 * library sets its CSS variables and per-element styles that way.
 * Paths are resolved inside the console's folder only (no `..`, no NUL, no symlink out).
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** dist/web/, next to dist/src/ where this file runs from. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Paths that are never console pages (the API; Prometheus' /metrics when it is enabled). */
const SERVER_PATHS = ['/api', '/metrics'];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};
/** Worth compressing; images and fonts already are. */
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.txt']);

export interface ConsoleRoutesOptions {
  /** The built console; default {@link CONSOLE_DIR}. */
  root?: string;
}

/** Registers GET (and HEAD) for every path outside /api/. */
export function consoleRoutes(app: FastifyInstance, options: ConsoleRoutesOptions = {}): void {
  const root = normalize(options.root ?? CONSOLE_DIR);
  const gzipped = new Map<string, Buffer>();

  const send = async (request: FastifyRequest, reply: FastifyReply, file: string, cacheControl: string) => {
    const body = await readFile(file);
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    reply.header('content-type', type).header('cache-control', cacheControl).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    if (type.startsWith('text/html')) reply.header('content-security-policy', CONSOLE_CSP).header('x-frame-options', 'DENY');
    if (COMPRESSIBLE.has(extname(file))) {
      reply.header('vary', 'accept-encoding');
      if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? '')) && body.length > 1024) {
        let packed = gzipped.get(file);
        if (packed === undefined) {
          packed = gzipSync(body);
          gzipped.set(file, packed);
        }
        return reply.header('content-encoding', 'gzip').send(packed);
      }
    }
    return reply.send(body);
  };

  // Hidden from the OpenAPI document: these are the console's pages, not the API.
  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const pathname = request.url.split('?')[0] as string;
    // The server's own paths stay its own: an unknown API path or a disabled /metrics is a 404.
    if (SERVER_PATHS.some((p) => pathname === p || pathname.startsWith(`${p}/`))) return reply.callNotFound();
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return notFound(reply);
    }
    const index = join(root, 'index.html');
    if (!(await isFile(index))) {
      return reply.code(503).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send('The web console is not built on this server: run `npm run build:web` (the API works: /api/v1/docs).\n');
    }
    if (decoded.includes('\0') || decoded.split('/').includes('..')) return notFound(reply);
    const file = join(root, decoded);
    if (decoded !== '/' && (await isFile(file)) && (await inside(root, file))) {
      return send(request, reply, file, decoded.startsWith('/assets/') ? IMMUTABLE : 'no-cache');
    }
    // A missing asset is an error (an old page asking for a file of a previous build), not a page.
    if (decoded.startsWith('/assets/') || extname(decoded) !== '') return notFound(reply);
    return send(request, reply, index, 'no-cache');
  });
}

function notFound(reply: FastifyReply) {
  return reply.code(404).type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send('not found\n');
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

/** True when `file`, symlinks resolved, lies inside `root`. */
async function inside(root: string, file: string): Promise<boolean> {
  const [realRoot, realFile] = await Promise.all([realpath(root), realpath(file)]);
  return realFile.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}
