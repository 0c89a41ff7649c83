/**
 * GET /api/v1/repositories/{repo}/snapshots/{snapshot}/diff?against=ID: what changed from
 * snapshot `against` to this one, the document `coffer diff --json against snapshot` prints
 * (docs/diff.md), bounded for a server (browse/snapshot-diff.ts): one page of changed paths,
 * the disks' ranges and the walk's problems cut at a cap, and the walk of files stopped at a
 * time limit. Needs `files.browse` on both snapshots (their VM, host or repository), as
 * browsing their files does; audited (`files.diff`) as searches are.
 */
import type { FastifyInstance } from 'fastify';
import { diffSnapshots } from '../../browse/index.js';
import { PageQueryProperties } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { bytesOf, printable } from './schemas.js';
import { permittedSnapshot, SnapshotParams } from './snapshot-access.js';

/**
 * How long the walk of files may take per request: under the console's own deadline for a
 * call (20 s, web/api/client.ts), so that a long walk answers what it found rather than
 * nothing. The disks' comparison (index pages only) comes on top and is not cut.
 */
const DIFF_WALK_MS = 15_000;
/** Ranges listed per disk (`rangeCount` says how many): a disk whose every other block changed has 2 million per TiB. */
const MAX_RANGES = 1000;
/** Problems listed per walk (`problemCount` says how many): a damaged filesystem may give one per entry. */
const MAX_PROBLEMS = 100;

const integer = { type: 'integer' } as const;
const LettersSchema = { type: 'object', required: ['+', '-', 'M', 'T', 'U'], properties: { '+': integer, '-': integer, M: integer, T: integer, U: integer } } as const;
const CountsSchema = {
  type: 'object',
  required: ['files', 'directories', 'others'],
  description: 'changed paths per kind of entry and letter',
  properties: { files: LettersSchema, directories: LettersSchema, others: LettersSchema },
} as const;
const ChangeSchema = {
  type: 'object',
  required: ['change', 'path', 'type'],
  properties: {
    change: { type: 'string', enum: ['+', '-', 'M', 'T', 'U'], description: '+ added, - removed, M content modified, T type changed, U metadata only (docs/diff.md)' },
    path: printable('absolute path'),
    pathBytes: bytesOf('path'),
    type: { type: 'string', description: 'file, directory, symlink…: in the newer snapshot, in the older for -' },
    was: { type: 'string', description: 'T only: the type it had' },
    size: { type: 'number' },
  },
} as const;
const ProblemsSchema = {
  type: 'array',
  description: `folders and entries that could not be read or compared (what is below them is unknown); at most ${MAX_PROBLEMS}, \`problemCount\` says how many`,
  items: { type: 'object', required: ['path', 'code', 'message'], properties: { path: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } } },
} as const;
const SnapshotRefSchema = { type: 'object', required: ['id', 'shortId', 'vm', 'time'], properties: { id: { type: 'string' }, shortId: { type: 'string' }, vm: { type: 'string' }, time: { type: 'string', format: 'date-time' } } } as const;
const DiskSchema = {
  type: 'object',
  required: ['name', 'change'],
  properties: {
    name: { type: 'string' },
    change: { type: 'string', enum: ['added', 'removed', 'changed', 'unchanged'] },
    sizeA: { type: 'number', description: 'in the older snapshot (absent when added)' },
    sizeB: { type: 'number', description: 'in the newer snapshot (absent when removed)' },
    blockSize: integer,
    changedBlocks: integer,
    zeroedBlocks: { type: 'integer', description: 'changed blocks that read as zeros now' },
    changedBytes: { type: 'number' },
    ranges: { type: 'array', description: `the changed byte ranges, adjacent blocks merged; the first ${MAX_RANGES}`, items: { type: 'object', required: ['offset', 'length'], properties: { offset: { type: 'number' }, length: { type: 'number' } } } },
    rangeCount: { type: 'integer', description: 'how many ranges there are' },
    pagesRead: integer,
    pagesSkipped: integer,
  },
} as const;
const TotalsSchema = {
  type: 'object',
  required: ['changedBlocks', 'changedBytes', 'zeroedBlocks', 'disksChanged', 'disksAdded', 'disksRemoved', 'disksResized', 'pagesRead', 'pagesSkipped'],
  properties: Object.fromEntries(['changedBlocks', 'changedBytes', 'zeroedBlocks', 'disksChanged', 'disksAdded', 'disksRemoved', 'disksResized', 'pagesRead', 'pagesSkipped'].map((k) => [k, { type: 'number' }])),
} as const;
const VolumeSchema = {
  type: 'object',
  required: ['volume', 'disk', 'change', 'changedBytes', 'changes', 'complete'],
  properties: {
    volume: { type: 'string' },
    disk: { type: 'string' },
    change: { type: 'string', enum: ['added', 'removed', 'unchanged', 'compared', 'not compared'], description: 'compared: both filesystems walked; unchanged: no byte of it changed (not read); added, removed: on one side only (not walked); not compared: see problem' },
    filesystem: { type: 'string' },
    changedBytes: { type: 'number' },
    problem: { type: 'string', description: 'why its files were not compared' },
    changes: { type: 'array', items: ChangeSchema, description: 'the changes of this volume that fall in the page' },
    counts: CountsSchema,
    bytesAdded: { type: 'number', description: 'sizes of the files added' },
    bytesRemoved: { type: 'number' },
    checks: { type: 'object', properties: { filesRead: integer, bytesRead: { type: 'number' }, unchecked: integer } },
    problems: ProblemsSchema,
    problemCount: integer,
    complete: { type: 'boolean', description: 'false for the volume the time limit stopped in (its counts count what was walked)' },
  },
} as const;
const DiffSchema = {
  type: 'object',
  required: ['kind', 'a', 'b', 'total', 'limit', 'offset', 'next', 'timedOut', 'truncated'],
  properties: {
    kind: { type: 'string', enum: ['disks', 'files'], description: 'disks: two VM snapshots (`disks`, `totals`, with files=true `volumes`); files: two file snapshots (`changes`, `counts`…)' },
    a: { ...SnapshotRefSchema, description: 'the older snapshot: `against`' },
    b: { ...SnapshotRefSchema, description: 'the newer: the one in the path' },
    disks: { type: 'array', items: DiskSchema },
    totals: TotalsSchema,
    volumes: { type: 'array', items: VolumeSchema, description: 'files=true: each volume of the two VM snapshots; after a time-out, those the walk reached' },
    changes: { type: 'array', items: ChangeSchema, description: 'file snapshots: the changes of the page' },
    counts: CountsSchema,
    bytesAdded: { type: 'number', description: 'file snapshots: content bytes added (absent after a time-out)' },
    bytesRemoved: { type: 'number' },
    treesRead: integer,
    treesSkipped: integer,
    problems: ProblemsSchema,
    problemCount: integer,
    total: { type: 'integer', description: 'changed paths found, all volumes: the whole diff\'s unless timedOut' },
    limit: integer,
    offset: integer,
    next: { type: ['integer', 'null'], description: 'the offset of the next page of changed paths; null when none was found past this one' },
    timedOut: { type: 'boolean', description: `the walk of files stopped ${DIFF_WALK_MS / 1000} s into the request: counts and total count what it reached, later paths are not reachable here (coffer diff lists them)` },
    truncated: { type: 'boolean', description: 'something was left out: changed paths past this page, ranges or problems past their cap, or the time-out' },
  },
} as const;

export function snapshotDiffRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot/diff',
    operationId: 'diffSnapshots',
    summary: 'What changed from snapshot `against` to this one: each disk\'s changed byte ranges (VM snapshots; with files=true each volume\'s files too), or the paths added, removed and changed (file snapshots)',
    description: `The document \`coffer diff --json AGAINST SNAPSHOT\` prints (docs/diff.md), paths printable as listings give them (\`\\xNN\`, \`pathBytes\` beside), bounded: \`limit\` changed paths from \`offset\` (every change is counted, \`total\`, \`next\`), the first ${MAX_RANGES} ranges per disk (\`rangeCount\`), ${MAX_PROBLEMS} problems per walk (\`problemCount\`), and the walk of files stopped ${DIFF_WALK_MS / 1000} s into the request (\`timedOut\`). Both snapshots of one kind (else 400 E_USAGE); both visible to the caller with files.browse.`,
    tag: 'files',
    access: { permission: 'files.browse', filtered: true },
    params: SnapshotParams,
    querystring: {
      type: 'object',
      additionalProperties: false,
      required: ['against'],
      properties: {
        ...PageQueryProperties,
        against: { type: 'string', pattern: '^[0-9a-f]{8,64}$', description: 'the snapshot to compare with (the older one, usually): an id or a unique prefix of 8+ characters, in the same repository' },
        files: { type: 'boolean', default: false, description: 'VM snapshots: compare each volume\'s files too (walks the filesystems where their bytes changed)' },
        disk: { type: 'string', minLength: 1, maxLength: 200, description: 'VM snapshots: only this disk (a name, or a number in this snapshot)' },
      },
    },
    response: { 200: DiffSchema },
    async handler(request, reply) {
      const { repo, snapshot: reference } = request.params as { repo: string; snapshot: string };
      const q = request.query as { against: string; files: boolean; disk?: string; limit: number; offset: number };
      const b = await permittedSnapshot(context, request, repo, reference, 'files.browse');
      const a = await permittedSnapshot(context, request, repo, q.against, 'files.browse');
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const document = await diffSnapshots(await context.catalog.openRepository(repo), a, b, {
        files: q.files,
        ...(q.disk !== undefined ? { disk: q.disk } : {}),
        page: { offset: q.offset, limit: q.limit },
        maxRanges: MAX_RANGES,
        maxProblems: MAX_PROBLEMS,
        deadline: AbortSignal.timeout(DIFF_WALK_MS),
        signal: gone.signal,
      });
      await auditRequest(context, request, {
        action: 'files.diff',
        target: `/repositories/${repo}/snapshots/${b.id}`,
        outcome: 'success',
        details: { vm: b.vm, against: a.id, ...(a.vm !== b.vm ? { againstVm: a.vm } : {}), files: q.files, ...(q.disk !== undefined ? { disk: q.disk } : {}), total: document.total, timedOut: document.timedOut },
      });
      return document;
    },
  });
}
