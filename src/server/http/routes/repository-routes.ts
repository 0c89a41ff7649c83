/**
 * /api/v1/repositories: the configured repositories, their statistics, and their snapshots
 * (paged and filtered; one snapshot's details), read through the repository library with the
 * repository catalog's short cache. A snapshot is visible to callers with `inventory.read` on
 * the repository, on its VM, or on the VM's host.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Snapshot } from '../../../repo/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties, pageList, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import type { ServiceContext } from '../service-context.js';
import { NameParam, nameParams } from './schemas.js';

const RepositoryOutSchema = {
  type: 'object',
  required: ['name', 'url', 'encrypted'],
  properties: { name: { type: 'string' }, url: { type: 'string' }, encrypted: { type: 'boolean', description: 'true when a passphrase file is configured' } },
} as const;

const StatsSchema = {
  type: 'object',
  properties: Object.fromEntries(
    ['snapshots', 'vms', 'bytesLogical', 'bytesData', 'bytesUnique', 'bytesStored', 'bytesStoredChunks', 'chunks', 'indexPages', 'dedupRatio', 'compressionRatio', 'totalRatio'].map((k) => [k, { type: 'number' }]),
  ),
} as const;

const DiskSchema = {
  type: 'object',
  required: ['name', 'size', 'sourceFormat', 'source', 'blockSize'],
  properties: { name: { type: 'string' }, size: { type: 'integer' }, sourceFormat: { type: 'string' }, source: { type: 'string' }, blockSize: { type: 'integer' } },
} as const;
const SnapshotSummarySchema = {
  type: 'object',
  required: ['id', 'vm', 'time', 'hostname', 'tags'],
  properties: {
    id: { type: 'string' },
    vm: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
    hostname: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    parent: { type: ['string', 'null'] },
    disks: { type: 'integer', description: 'how many disks' },
    bytesLogical: { type: 'number' },
    consistency: { type: 'string' },
  },
} as const;
const SnapshotDetailSchema = {
  type: 'object',
  required: ['id', 'vm', 'time', 'hostname', 'tags', 'disks', 'stats'],
  properties: {
    ...SnapshotSummarySchema.properties,
    disks: { type: 'array', items: DiskSchema },
    stats: { type: 'object', additionalProperties: true },
    consistency: { type: 'object', additionalProperties: true },
    definition: { type: 'object', additionalProperties: true, description: 'the VM\'s stored definition (kind, and its XML or command line)' },
  },
} as const;

export function repositoryRoutes(app: FastifyInstance, context: ServiceContext): void {
  const repoParam = (r: FastifyRequest) => (r.params as { repo: string }).repo;
  const known = (r: FastifyRequest) => {
    const config = context.catalog.config(repoParam(r));
    if (config === undefined) throw new ApiError('E_NOT_FOUND', `no repository named ${repoParam(r)}`);
    return config;
  };
  const hostOf = (vm: string) => (context.config.config.vms ?? []).find((v) => v.name === vm)?.host;
  const snapshotPaths = (repo: string, s: Pick<Snapshot, 'vm'>) => {
    const host = hostOf(s.vm);
    return [`/repositories/${repo}`, `/vms/${s.vm}`, ...(host === undefined ? [] : [`/hosts/${host}`])];
  };
  const summary = (s: Snapshot) => ({
    id: s.id,
    vm: s.vm,
    time: s.time,
    hostname: s.hostname,
    tags: s.tags,
    parent: s.parent,
    disks: s.disks.length,
    bytesLogical: s.disks.reduce((n, d) => n + d.size, 0),
    ...(s.consistency === undefined ? {} : { consistency: s.consistency.level }),
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories',
    operationId: 'listRepositories',
    summary: 'The configured repositories',
    tag: 'repositories',
    access: { permission: 'inventory.read', filtered: true },
    querystring: { type: 'object', additionalProperties: false, properties: PageQueryProperties },
    response: { 200: pageOf(RepositoryOutSchema) },
    async handler(request) {
      const repos = (context.config.config.repositories ?? [])
        .filter((r) => canSee(request, 'inventory.read', [`/repositories/${r.name}`]))
        .map((r) => ({ name: r.name, url: r.url, encrypted: r['passphrase-file'] !== undefined }));
      return pageList(repos, request.query as { limit: number; offset: number });
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/stats',
    operationId: 'repositoryStats',
    summary: 'Sizes, and what deduplication and compression save',
    tag: 'repositories',
    access: { permission: 'inventory.read', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    response: { 200: StatsSchema },
    async handler(request) {
      known(request);
      return context.catalog.stats(repoParam(request));
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots',
    operationId: 'listSnapshots',
    summary: 'Snapshots, newest first, filtered and paged',
    tag: 'repositories',
    access: { permission: 'inventory.read', filtered: true },
    params: nameParams('repo'),
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...PageQueryProperties,
        vm: { type: 'string' },
        tag: { type: 'string' },
        hostname: { type: 'string' },
        since: { type: 'string', format: 'date-time' },
        until: { type: 'string', format: 'date-time' },
      },
    },
    response: { 200: pageOf(SnapshotSummarySchema) },
    async handler(request) {
      const repo = known(request).name;
      const q = request.query as { limit: number; offset: number; vm?: string; tag?: string; hostname?: string; since?: string; until?: string };
      const since = q.since === undefined ? undefined : Date.parse(q.since);
      const until = q.until === undefined ? undefined : Date.parse(q.until);
      const all = await context.catalog.listSnapshots(repo);
      const matching = all
        .filter((s) => (q.vm === undefined || s.vm === q.vm) && (q.tag === undefined || s.tags.includes(q.tag)) && (q.hostname === undefined || s.hostname === q.hostname))
        .filter((s) => (since === undefined || Date.parse(s.time) >= since) && (until === undefined || Date.parse(s.time) < until))
        .filter((s) => canSee(request, 'inventory.read', snapshotPaths(repo, s)))
        .reverse();
      const page = pageList(matching, q);
      return { ...page, items: page.items.map(summary) };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot',
    operationId: 'getSnapshot',
    summary: 'One snapshot (full id or a unique prefix of at least 8 characters)',
    tag: 'repositories',
    access: { permission: 'inventory.read', filtered: true },
    params: { type: 'object', required: ['repo', 'snapshot'], properties: { repo: NameParam, snapshot: { type: 'string', pattern: '^[0-9a-f]{8,64}$' } } },
    response: { 200: SnapshotDetailSchema },
    async handler(request) {
      const repo = known(request).name;
      const { snapshot } = request.params as { snapshot: string };
      const matches = (await context.catalog.listSnapshots(repo)).filter((s) => s.id.startsWith(snapshot));
      const found = matches[0];
      if (matches.length > 1) throw new ApiError('E_CONFLICT', `snapshot prefix ${snapshot} is ambiguous: give more characters`);
      // Not found and not visible answer alike, so ids cannot be probed.
      if (found === undefined || !canSee(request, 'inventory.read', snapshotPaths(repo, found))) throw new ApiError('E_NOT_FOUND', `no snapshot ${snapshot} in repository ${repo}`);
      const { definition, disks, ...rest } = found;
      return {
        ...rest,
        disks: disks.map((d) => ({ name: d.name, size: d.size, sourceFormat: d.sourceFormat, source: d.source, blockSize: d.blockSize })),
        ...(definition === null ? {} : { definition }),
      };
    },
  });
}
