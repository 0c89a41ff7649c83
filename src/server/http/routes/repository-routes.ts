/**
 * /api/v1/repositories: the configured repositories, their statistics, and their snapshots
 * (filtered, paged by cursor; one snapshot's details): lists from the snapshot index in the
 * state database (inventory/snapshot-index.ts), one snapshot's details from its manifest in the
 * repository. A snapshot is visible to callers with `inventory.read` on
 * the repository, on its VM, or on the VM's host.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../api-error.js';
import { CursorQueryProperties, PageQueryProperties, pageList, pageOf } from '../paging.js';
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
  properties: {
    name: { type: 'string' },
    size: { type: 'integer' },
    sourceFormat: { type: 'string' },
    source: { type: 'string' },
    blockSize: { type: 'integer' },
    changeTracking: {
      type: 'object',
      required: ['method'],
      description: 'how unchanged ranges were known (dirty-bitmap, image-chain, changed-ranges, none), why the disk was read in full, and the checkpoint left',
      properties: { method: { type: 'string', enum: ['dirty-bitmap', 'image-chain', 'changed-ranges', 'none'] }, reason: { type: 'string' }, checkpoint: { type: 'string' } },
    },
  },
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
/** A list's item: the summary and what the index keeps besides. */
const SnapshotListItemSchema = {
  ...SnapshotSummarySchema,
  properties: {
    ...SnapshotSummarySchema.properties,
    kind: { type: 'string', enum: ['disk', 'files'] },
    bytesNew: { type: 'number' },
    bytesStored: { type: 'number' },
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
    tagsSetAt: { type: 'string', format: 'date-time', description: 'when `coffer tag` last set the tags (a tag record); absent when they are the backup\'s' },
    originalTags: { type: 'array', items: { type: 'string' }, description: 'the tags the snapshot was backed up with, when `coffer tag` changed them (`tags` are the effective ones)' },
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
  const snapshotPaths = (repo: string, s: { vm: string }) => {
    const host = hostOf(s.vm);
    return [`/repositories/${repo}`, `/vms/${s.vm}`, ...(host === undefined ? [] : [`/hosts/${host}`])];
  };
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
    description: 'Served from the snapshot index (refreshed after the server\'s own tasks and every minute; a snapshot the CLI wrote behind the server\'s back appears within a minute). Page with `cursor` (the `next` of the previous page): rows added meanwhile never repeat or skip a row. `offset` still works but costs the rows it skips. A caller whose grants do not cover the repository sees only the snapshots of the VMs and hosts granted; a page may then hold fewer than `limit` items.',
    tag: 'repositories',
    access: { permission: 'inventory.read', filtered: true },
    params: nameParams('repo'),
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...PageQueryProperties,
        ...CursorQueryProperties,
        vm: { type: 'string' },
        tag: { type: 'string' },
        hostname: { type: 'string' },
        since: { type: 'string', format: 'date-time' },
        until: { type: 'string', format: 'date-time' },
      },
    },
    response: { 200: pageOf(SnapshotListItemSchema) },
    async handler(request) {
      const repo = known(request).name;
      const q = request.query as { limit: number; offset: number; cursor?: string; vm?: string; tag?: string; hostname?: string; since?: string; until?: string };
      const page = await context.catalog.snapshots(repo, {
        limit: q.limit,
        ...(q.cursor === undefined ? { offset: q.offset } : { cursor: q.cursor }),
        ...(q.vm === undefined ? {} : { vm: q.vm }),
        ...(q.tag === undefined ? {} : { tag: q.tag }),
        ...(q.hostname === undefined ? {} : { hostname: q.hostname }),
        ...(q.since === undefined ? {} : { since: Date.parse(q.since) }),
        ...(q.until === undefined ? {} : { until: Date.parse(q.until) }),
      });
      return { items: page.items.filter((s) => canSee(request, 'inventory.read', snapshotPaths(repo, s))), total: page.total, limit: q.limit, offset: q.cursor === undefined ? q.offset : 0, next: page.next };
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
      const found = await context.catalog.findSnapshot(repo, snapshot);
      if (found === 'ambiguous') throw new ApiError('E_CONFLICT', `snapshot prefix ${snapshot} is ambiguous: give more characters`);
      // Not found and not visible answer alike, so ids cannot be probed.
      if (found === undefined || !canSee(request, 'inventory.read', snapshotPaths(repo, found))) throw new ApiError('E_NOT_FOUND', `no snapshot ${snapshot} in repository ${repo}`);
      const { definition, disks, retagged, ...rest } = found;
      const changed = retagged !== undefined && (retagged.manifestTags.length !== rest.tags.length || retagged.manifestTags.some((tag, i) => tag !== rest.tags[i]));
      return {
        ...rest,
        ...(retagged === undefined ? {} : { tagsSetAt: retagged.time }),
        ...(changed ? { originalTags: retagged.manifestTags } : {}),
        disks: disks.map((d) => ({ name: d.name, size: d.size, sourceFormat: d.sourceFormat, source: d.source, blockSize: d.blockSize, ...(d.changeTracking === undefined ? {} : { changeTracking: { ...d.changeTracking } }) })),
        ...(definition === null ? {} : { definition }),
      };
    },
  });
}
