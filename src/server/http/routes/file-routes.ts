/**
 * File browsing over the API, synchronous and streamed: a snapshot's volumes (partitions, LVM
 * logical volumes, filesystems; a file snapshot's tree as the one volume `files`), a directory listing (paged), one file (Content-Length, a safe
 * Content-Disposition, a sniffed Content-Type for previews of text and images, Range), a folder
 * as tar or zip, and "which night still had this file?" across a VM's snapshots. Every
 * download is audit-logged (who, which snapshot, volume and path, from where). Needs
 * `files.browse` on the snapshot's VM, host or repository.
 *
 * Names are bytes on ext2/3/4 and XFS: every name, path and link target answered is in its
 * printable form (a byte that is not UTF-8 or a control character as `\xNN`, a backslash as
 * `\\`) with its bytes in hex beside it when it holds an escape, and `path=` takes that form
 * back (see browse/snapshot-browser.ts). The audit log records paths so too.
 */
import { PassThrough, Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { resolvePath } from '../../../fs/index.js';
import { printableName } from '../../../names/index.js';
import type { Snapshot } from '../../../repo/index.js';
import type { IndexedSnapshot } from '../../inventory/index.js';
import { tarTree, zipTree } from '../../../restore/index.js';
import { contentDisposition, fileBytes, fileNode, findByName, listDirectory, listSnapshotVolumes, openVolume, parseRange, sniffContentType, withVolume } from '../../browse/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { bytesOf, NameParam, printable } from './schemas.js';
import { permittedSnapshot, SnapshotParams, vmPaths } from './snapshot-access.js';

const VolumeQuery = { type: 'string', minLength: 1, maxLength: 300, description: 'a volume id from GET …/volumes: disk0:p1, disk1:disk, vg0/root; `files` in a file snapshot' } as const;
const PathQuery = {
  type: 'string',
  minLength: 1,
  maxLength: 4096,
  pattern: '^/',
  default: '/',
  description: 'an absolute path inside the volume, its names as listings give them: a byte that is not UTF-8 (or a control character) as `\\xNN`, a backslash as `\\\\` (`/d\\xe9j\\xe0/x\\xb5`); joined with `/`, which no name holds',
} as const;

const EntrySchema = {
  type: 'object',
  required: ['name', 'type', 'size'],
  properties: {
    name: printable('name'), nameBytes: bytesOf('name'), type: { type: 'string' }, size: { type: 'number' }, mode: { type: 'integer' }, uid: { type: 'integer' }, gid: { type: 'integer' },
    user: { type: 'string', description: 'the owner\'s name where the snapshot recorded it (a file snapshot: the name on the host backed up; absent for a guest filesystem, which holds ids only); printable as `name` is' },
    group: { type: 'string', description: 'the group\'s name, as `user`' },
    nlink: { type: 'integer' }, mtime: { type: ['string', 'null'] }, target: printable('symlink target'), targetBytes: bytesOf('symlink target'), error: { type: 'string' },
  },
} as const;
const VolumeSchema = {
  type: 'object',
  required: ['id', 'disk', 'name', 'kind', 'size', 'filesystem'],
  properties: {
    id: { type: 'string' }, disk: { type: 'string' }, name: { type: 'string' }, kind: { type: 'string' }, size: { type: 'number' }, offset: { type: ['number', 'null'] },
    type: { type: 'string' }, filesystem: { type: ['string', 'null'] }, label: { type: 'string' }, uuid: { type: ['string', 'null'] }, notes: { type: 'array', items: { type: 'string' } },
  },
} as const;
const Binary = { description: 'the bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } as const;

/**
 * Search bounds: snapshots per page, matches per snapshot, time per page. The time stays
 * under the console's 20 s call deadline (web/api/client.ts CALL_TIMEOUT_MS), as the diff
 * route's does: a page that used 20 s answered after the console had given up on it.
 */
const SEARCH_SNAPSHOTS_PER_PAGE = 10;
const SEARCH_MATCHES_PER_SNAPSHOT = 200;
const SEARCH_PAGE_MS = 15_000;

export function fileRoutes(app: FastifyInstance, context: ServiceContext): void {
  const snapshotOf = async (request: FastifyRequest): Promise<{ repo: string; snapshot: Snapshot }> => {
    const { repo, snapshot } = request.params as { repo: string; snapshot: string };
    return { repo, snapshot: await permittedSnapshot(context, request, repo, snapshot, 'files.browse') };
  };
  const audit = (request: FastifyRequest, action: string, repo: string, snapshot: Snapshot, details: Record<string, unknown>) =>
    auditRequest(context, request, { action, target: `/repositories/${repo}/snapshots/${snapshot.id}`, outcome: 'success', details: { vm: snapshot.vm, ...details } });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot/volumes',
    operationId: 'listSnapshotVolumes',
    summary: 'The volumes of a snapshot\'s disks (partitions, LVM logical volumes) and the filesystem on each; a file snapshot\'s files are its one volume, `files`',
    tag: 'files',
    access: { permission: 'files.browse', filtered: true },
    params: SnapshotParams,
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: VolumeSchema } } } },
    async handler(request) {
      const { repo, snapshot } = await snapshotOf(request);
      return { items: await listSnapshotVolumes(await context.catalog.openRepository(repo), snapshot) };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot/files',
    operationId: 'listSnapshotFiles',
    summary: 'A directory of a volume, sorted by name and paged (or the one entry when the path is not a directory)',
    tag: 'files',
    access: { permission: 'files.browse', filtered: true },
    params: SnapshotParams,
    querystring: { type: 'object', additionalProperties: false, required: ['volume'], properties: { ...PageQueryProperties, volume: VolumeQuery, path: PathQuery } },
    response: { 200: { type: 'object', required: ['path', 'type', 'items', 'total', 'limit', 'offset'], properties: { path: printable('path as it resolved'), pathBytes: bytesOf('path'), type: { type: 'string' }, items: { type: 'array', items: EntrySchema }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } } } },
    async handler(request) {
      const { repo, snapshot } = await snapshotOf(request);
      const q = request.query as { volume: string; path: string; limit: number; offset: number };
      const listing = await withVolume(await context.catalog.openRepository(repo), snapshot, q.volume, (fs) => listDirectory(fs, q.path, q));
      return { ...listing, limit: q.limit, offset: q.offset };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot/files/content',
    operationId: 'downloadSnapshotFile',
    summary: 'One file\'s bytes, streamed (Range supported; `inline=true` for a preview of text or an image)',
    tag: 'files',
    access: { permission: 'files.browse', filtered: true },
    params: SnapshotParams,
    querystring: { type: 'object', additionalProperties: false, required: ['volume', 'path'], properties: { volume: VolumeQuery, path: PathQuery, inline: { type: 'boolean', default: false } } },
    response: { 200: Binary, 206: Binary },
    async handler(request, reply) {
      const { repo, snapshot } = await snapshotOf(request);
      const q = request.query as { volume: string; path: string; inline: boolean };
      const open = await openVolume(await context.catalog.openRepository(repo), snapshot, q.volume);
      try {
        const { node, name, path } = await fileNode(open.fs, q.path);
        const range = parseRange(request.headers.range, node.size);
        if (range === 'unsatisfiable') {
          reply.header('content-range', `bytes */${node.size}`);
          throw new ApiError('E_RANGE', `the file has ${node.size} bytes: the range ${request.headers.range ?? ''} is outside it`);
        }
        const head = node.size === 0 ? new Uint8Array() : await open.fs.read(node, 0, Math.min(8192, node.size));
        const start = range?.start ?? 0;
        const end = range?.end ?? node.size - 1;
        await audit(request, 'files.download', repo, snapshot, { volume: q.volume, path: printableName(path), bytes: end + 1 - start, ...(range === undefined ? {} : { range: `${start}-${end}` }) });
        const abort = new AbortController();
        const body = Readable.from(closing(fileBytes(open.fs, node, start, end, abort.signal), open.close));
        request.raw.once('close', () => abort.abort());
        reply
          .code(range === undefined ? 200 : 206)
          .header('content-type', sniffContentType(head))
          .header('content-length', String(end + 1 - start))
          .header('content-disposition', contentDisposition(name, q.inline))
          .header('accept-ranges', 'bytes')
          .header('x-content-type-options', 'nosniff')
          .header('content-security-policy', "default-src 'none'; sandbox");
        if (range !== undefined) reply.header('content-range', `bytes ${start}-${end}/${node.size}`);
        return reply.send(body);
      } catch (error) {
        await open.close();
        throw error;
      }
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot/files/archive',
    operationId: 'downloadSnapshotFolder',
    summary: 'A folder (or one file) streamed as a tar or zip archive; entry names are made safe',
    tag: 'files',
    access: { permission: 'files.browse', filtered: true },
    params: SnapshotParams,
    querystring: { type: 'object', additionalProperties: false, required: ['volume', 'path'], properties: { volume: VolumeQuery, path: PathQuery, format: { type: 'string', enum: ['tar', 'zip'], default: 'tar' } } },
    response: { 200: Binary },
    async handler(request, reply) {
      const { repo, snapshot } = await snapshotOf(request);
      const q = request.query as { volume: string; path: string; format: 'tar' | 'zip' };
      const open = await openVolume(await context.catalog.openRepository(repo), snapshot, q.volume);
      try {
        const source = await resolvePath(open.fs, q.path);
        const base = source.path === '/' ? `${snapshot.vm}-${q.volume.replace(/[:/]/g, '-')}` : (source.path.split('/').pop() as string);
        await audit(request, 'files.archive', repo, snapshot, { volume: q.volume, path: printableName(source.path), format: q.format });
        const abort = new AbortController();
        request.raw.once('close', () => abort.abort());
        let body: Readable;
        if (q.format === 'zip') {
          const zip = zipTree(open.fs, [source], abort.signal);
          body = zip.stream;
          void zip.report.then((report) => logProblems(request, report.problems), () => {});
          body.once('close', () => void open.close());
        } else {
          const out = new PassThrough();
          body = out;
          void tarTree(open.fs, [source], out, { signal: abort.signal }).then((report) => {
            logProblems(request, report.problems);
            out.end();
          }, (error: unknown) => out.destroy(error as Error)).finally(() => open.close());
        }
        reply
          .code(200)
          .header('content-type', q.format === 'zip' ? 'application/zip' : 'application/x-tar')
          .header('content-disposition', contentDisposition(`${base}.${q.format}`))
          .header('x-content-type-options', 'nosniff');
        return reply.send(body);
      } catch (error) {
        await open.close();
        throw error;
      }
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/vms/:vm/files/search',
    operationId: 'searchVmFiles',
    summary: 'Which snapshots of a VM hold files named like GLOB ("which night still had this file?"), newest first, paged by snapshots',
    description: `Each page searches up to \`limit\` snapshots (default ${SEARCH_SNAPSHOTS_PER_PAGE}) in every volume with a filesystem (disk snapshots and file snapshots alike: a guest agent's backups are its VM's), at most ${SEARCH_MATCHES_PER_SNAPSHOT} matches per snapshot and volume and ${SEARCH_PAGE_MS / 1000} s per page; \`truncated\` says a bound was hit, \`next\` is the offset of the next page.`,
    tag: 'files',
    access: { permission: 'files.browse', paths: (r) => vmPaths(context, (r.params as { vm: string }).vm) },
    params: { type: 'object', required: ['vm'], properties: { vm: NameParam } },
    querystring: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: { name: { type: 'string', minLength: 1, maxLength: 255, description: 'a glob: `*`, `?`, `[…]`; a byte that is not UTF-8 as `\\xNN`, as listings print it' }, repository: NameParam, limit: { type: 'integer', minimum: 1, maximum: 50, default: SEARCH_SNAPSHOTS_PER_PAGE }, offset: { type: 'integer', minimum: 0, default: 0 } },
    },
    response: {
      200: {
        type: 'object',
        required: ['items', 'snapshots', 'truncated'],
        properties: {
          items: { type: 'array', items: { type: 'object', properties: { repository: { type: 'string' }, snapshot: { type: 'string' }, time: { type: 'string' }, volume: { type: 'string' }, path: printable('whole path'), pathBytes: bytesOf('whole path'), type: { type: 'string' }, size: { type: 'number' }, mtime: { type: ['string', 'null'] } } } },
          snapshots: { type: 'integer', description: 'snapshots of the VM in all' },
          searched: { type: 'integer' },
          searchedSnapshots: {
            type: 'array',
            description: 'the snapshots this page searched, newest first, each with its number of matches (0: the file was not in it), so that the answer says which nights had the file and which no longer did',
            items: { type: 'object', required: ['repository', 'snapshot', 'time', 'matches'], properties: { repository: { type: 'string' }, snapshot: { type: 'string' }, time: { type: 'string' }, matches: { type: 'integer' } } },
          },
          truncated: { type: 'boolean' },
          next: { type: ['integer', 'null'] },
        },
      },
    },
    async handler(request) {
      const { vm } = request.params as { vm: string };
      const q = request.query as { name: string; repository?: string; limit: number; offset: number };
      const repos = (context.config.config.repositories ?? []).filter((r) => q.repository === undefined || r.name === q.repository);
      const all: { repo: string; snapshot: IndexedSnapshot }[] = [];
      for (const r of repos) {
        const list = await context.catalog.snapshotSummaries(r.name, { vm }).catch(() => [] as IndexedSnapshot[]);
        for (const s of list) all.push({ repo: r.name, snapshot: s });
      }
      all.sort((a, b) => (a.snapshot.time < b.snapshot.time ? 1 : -1));
      const deadline = Date.now() + SEARCH_PAGE_MS;
      const items: object[] = [];
      let truncated = false;
      let searched = 0;
      const searchedSnapshots: { repository: string; snapshot: string; time: string; matches: number }[] = [];
      for (const { repo, snapshot: summary } of all.slice(q.offset, q.offset + q.limit)) {
        if (Date.now() > deadline) {
          truncated = true;
          break;
        }
        searched++;
        const snapshot = await context.catalog.findSnapshot(repo, summary.id);
        if (snapshot === undefined || snapshot === 'ambiguous') continue;
        const row = { repository: repo, snapshot: snapshot.id, time: snapshot.time, matches: 0 };
        searchedSnapshots.push(row);
        const repository = await context.catalog.openRepository(repo);
        for (const volume of await listSnapshotVolumes(repository, snapshot)) {
          if (volume.filesystem === null) continue;
          const found = await withVolume(repository, snapshot, volume.id, (fs) => findByName(fs, q.name, { limit: SEARCH_MATCHES_PER_SNAPSHOT, deadline }));
          truncated ||= found.truncated;
          row.matches += found.items.length;
          for (const f of found.items) items.push({ repository: repo, snapshot: snapshot.id, time: snapshot.time, volume: volume.id, ...f });
        }
      }
      const nextOffset = q.offset + searched;
      await auditRequest(context, request, { action: 'files.search', target: `/vms/${vm}`, outcome: 'success', details: { name: q.name, searched } });
      return { items, snapshots: all.length, searched, searchedSnapshots, truncated, next: nextOffset < all.length ? nextOffset : null };
    },
  });

  function logProblems(request: FastifyRequest, problems: readonly { path: string; message: string }[]): void {
    if (problems.length > 0) request.log.warn({ problems: problems.slice(0, 20) }, 'archive entries that could not be read');
  }
}

/** Yields `source`'s values, then runs `close` however the consumer stops. */
async function* closing<T>(source: AsyncGenerator<T>, close: () => Promise<void>): AsyncGenerator<T> {
  try {
    yield* source;
  } finally {
    await close();
  }
}


