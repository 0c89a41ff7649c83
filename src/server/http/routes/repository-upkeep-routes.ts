/**
 * /api/v1/repositories/{repo}/space and /tape-catalog: what the console's storage forecast and
 * repository health page need beyond the statistics. Both read-only, `inventory.read` on the
 * repository.
 * - space: free and total bytes of the filesystem holding a repository on a local path
 *   (statfs, the same figures the `disk-space.low` check uses); null for S3 and repository
 *   servers, whose free space the server cannot know (the console then asks the user).
 * - tape-catalog: the media catalog (docs/tape-format.md §7): every snapshot written to or
 *   imported from a tape set, its volumes, when, and whether it is still in the repository.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readTapeCatalog } from '../../../repo/index.js';
import { filesystemSpace, localRepositoryPath } from '../../health/index.js';
import { ApiError } from '../api-error.js';
import { defineRoute } from '../route.js';
import type { ServiceContext } from '../service-context.js';
import { nameParams } from './schemas.js';

const SpaceSchema = {
  type: 'object',
  required: ['repository', 'local', 'freeBytes', 'totalBytes', 'explanation'],
  properties: {
    repository: { type: 'string' },
    local: { type: 'boolean', description: 'true for a repository on a local path (its filesystem is measured)' },
    freeBytes: { type: ['number', 'null'], description: 'bytes available to the server\'s user; null when not known' },
    totalBytes: { type: ['number', 'null'], description: 'the filesystem\'s size; null when not known' },
    explanation: { type: 'string', description: 'where the figures come from, or why they are not known' },
  },
} as const;

const TapeEntrySchema = {
  type: 'object',
  required: ['snapshot', 'vm', 'time', 'inRepository', 'tapeSet', 'volumes', 'written', 'imported'],
  properties: {
    snapshot: { type: 'string' },
    vm: { type: ['string', 'null'] },
    time: { type: ['string', 'null'], description: 'the snapshot\'s time (null on entries an import wrote)' },
    inRepository: { type: 'boolean', description: 'false once the snapshot was forgotten: import it back from these volumes' },
    tapeSet: { type: ['string', 'null'] },
    volumes: { type: 'array', items: { type: 'object', required: ['sequence', 'name'], properties: { sequence: { type: 'integer' }, name: { type: 'string' } } } },
    written: { type: 'string', format: 'date-time', description: 'when the export (or import) recorded it' },
    imported: { type: 'boolean', description: 'true when the snapshot came into this repository from the tape' },
  },
} as const;

const TapeCatalogSchema = {
  type: 'object',
  required: ['entries', 'damagedNotes'],
  properties: {
    entries: { type: 'array', items: TapeEntrySchema, description: 'oldest first' },
    damagedNotes: { type: 'integer', description: 'catalog notes that could not be read and were skipped (verify the repository)' },
  },
} as const;

export function repositoryUpkeepRoutes(app: FastifyInstance, context: ServiceContext): void {
  const repoParam = (r: FastifyRequest) => (r.params as { repo: string }).repo;
  const known = (r: FastifyRequest) => {
    const config = context.catalog.config(repoParam(r));
    if (config === undefined) throw new ApiError('E_NOT_FOUND', `no repository named ${repoParam(r)}`);
    return config;
  };

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/space',
    operationId: 'repositorySpace',
    summary: 'Free and total bytes of the repository\'s storage, when the server can know them',
    tag: 'repositories',
    access: { permission: 'inventory.read', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    response: { 200: SpaceSchema },
    async handler(request) {
      const config = known(request);
      const path = localRepositoryPath(config.url);
      if (path === undefined) {
        return { repository: config.name, local: false, freeBytes: null, totalBytes: null, explanation: 'the repository is on S3 or a repository server, whose free space this server cannot read' };
      }
      try {
        const { free, total } = await filesystemSpace(path);
        return { repository: config.name, local: true, freeBytes: free, totalBytes: total, explanation: `the filesystem holding ${path}` };
      } catch (error) {
        return { repository: config.name, local: true, freeBytes: null, totalBytes: null, explanation: `cannot read the space of ${path}: ${(error as Error).message}` };
      }
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/tape-catalog',
    operationId: 'tapeCatalog',
    summary: 'The media catalog: which snapshots are on which tape set and volumes, written when',
    tag: 'repositories',
    access: { permission: 'inventory.read', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    response: { 200: TapeCatalogSchema },
    async handler(request) {
      const name = known(request).name;
      const [repo, snapshots] = await Promise.all([context.catalog.openRepository(name), context.catalog.listSnapshots(name)]);
      let damagedNotes = 0;
      const entries = await readTapeCatalog(repo, { snapshotIds: new Set(snapshots.map((s) => s.id)), onDamaged: () => void damagedNotes++ });
      return { entries, damagedNotes };
    },
  });
}
