/**
 * /api/v1/repositories/{repo}/snapshots/{snapshot}/records: what happened to a snapshot after
 * it was taken — its newest verification (share of its chunks read back, when all were), its
 * newest test restore (passed or why not, and its boot check) and the tape sets holding it — read from its notes
 * (repo/snapshot-records.ts, as `coffer snapshots` shows them). `inventory.read` on the
 * snapshot's repository, VM or host.
 */
import type { FastifyInstance } from 'fastify';
import { readSnapshotRecords } from '../../../repo/index.js';
import { defineRoute } from '../route.js';
import type { ServiceContext } from '../service-context.js';
import { NameParam } from './schemas.js';
import { permittedSnapshot } from './snapshot-access.js';

const VolumesSchema = { type: 'array', items: { type: 'object', required: ['sequence', 'name'], properties: { sequence: { type: 'integer' }, name: { type: 'string' } } } } as const;

const BootSchema = {
  type: ['object', 'null'],
  description: 'the VM booted from the backup (`--boot`, a job\'s `boot: true`); null when it was not booted',
  required: ['passed', 'expect', 'machine', 'accel', 'firmware', 'secureBoot', 'secondsToText', 'reason', 'serialTail'],
  properties: {
    passed: { type: 'boolean', description: 'the expected text appeared on its serial console' },
    expect: { type: ['string', 'null'], description: 'the text waited for (`login:`)' },
    machine: { type: ['string', 'null'], description: 'the QEMU machine type' },
    accel: { type: ['string', 'null'], enum: ['kvm', 'tcg', null] },
    firmware: { type: ['string', 'null'], enum: ['bios', 'uefi', null], description: 'null for results stored before the firmware was recorded (those booted BIOS)' },
    secureBoot: { type: 'boolean' },
    secondsToText: { type: ['number', 'null'], description: 'seconds from QEMU\'s start to the text, when it appeared' },
    reason: { type: ['string', 'null'], description: 'why it failed' },
    serialTail: { type: 'string', description: 'the serial console\'s last lines (at most 12)' },
  },
} as const;

const RecordsSchema = {
  type: 'object',
  required: ['snapshot', 'verification', 'testRestore', 'tapes', 'damagedNotes'],
  properties: {
    snapshot: { type: 'string' },
    verification: {
      type: ['object', 'null'],
      required: ['time', 'chunks', 'verifiedChunks', 'fullyVerifiedAt'],
      properties: {
        time: { type: 'string', format: 'date-time', description: 'when the newest verify run recorded it' },
        chunks: { type: 'integer' },
        verifiedChunks: { type: 'integer', description: 'chunks read back and found intact' },
        fullyVerifiedAt: { type: ['string', 'null'], description: 'when every chunk had been read back; null while only a share was' },
      },
    },
    testRestore: {
      type: ['object', 'null'],
      required: ['time', 'passed', 'durationMs', 'failures', 'warnings', 'boot'],
      properties: {
        time: { type: 'string', format: 'date-time' },
        passed: { type: 'boolean' },
        durationMs: { type: 'number' },
        failures: { type: 'array', items: { type: 'string' } },
        warnings: { type: 'array', items: { type: 'string' } },
        boot: BootSchema,
      },
    },
    tapes: {
      type: 'array',
      items: { type: 'object', required: ['tapeSet', 'written', 'volumes', 'imported'], properties: { tapeSet: { type: ['string', 'null'] }, written: { type: 'string', format: 'date-time' }, volumes: VolumesSchema, imported: { type: 'boolean' } } },
    },
    damagedNotes: { type: 'integer', description: 'notes of this snapshot that could not be read (verify the repository)' },
  },
} as const;

export function snapshotRecordRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/repositories/:repo/snapshots/:snapshot/records',
    operationId: 'snapshotRecords',
    summary: 'A snapshot\'s newest verification, newest test restore and tapes',
    tag: 'repositories',
    access: { permission: 'inventory.read', filtered: true },
    params: { type: 'object', required: ['repo', 'snapshot'], properties: { repo: NameParam, snapshot: { type: 'string', pattern: '^[0-9a-f]{8,64}$' } } },
    response: { 200: RecordsSchema },
    async handler(request) {
      const { repo, snapshot: reference } = request.params as { repo: string; snapshot: string };
      const snapshot = await permittedSnapshot(context, request, repo, reference, 'inventory.read');
      let damagedNotes = 0;
      const records = await readSnapshotRecords(await context.catalog.openRepository(repo), snapshot.id, { onDamaged: () => void damagedNotes++ });
      return { snapshot: snapshot.id, ...records, damagedNotes };
    },
  });
}
