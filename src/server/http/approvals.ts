/**
 * Four-eyes approvals. With `security.four-eyes: true`, a destructive operation is not run
 * when asked: it is stored as a request (the operation's name and arguments), answered with
 * 202 and the request's id, and runs only when a second administrator (not the requester)
 * approves it; either may reject it. Operations register themselves by name
 * ({@link ApprovalStore.register}); today: `user.delete`, `repository.prune`,
 * `repository.forget`, `snapshot.tags` (a tag change that removes a tag). Every step is
 * audit-logged by the routes.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { userOfActor } from '../auth/index.js';
import type { StateSchema } from '../state/index.js';
import { ApiError } from './api-error.js';

export interface ApprovalRequest {
  id: string;
  operation: string;
  arguments: Record<string, unknown>;
  summary: string;
  requestedBy: string;
  requestedAt: number;
  status: 'pending' | 'approved' | 'rejected' | 'failed';
  decidedBy: string | null;
  decidedAt: number | null;
  result: string | null;
}

/** Runs an approved operation; returns a one-line result. */
export type ApprovedOperation = (args: Record<string, unknown>, approver: string) => Promise<string>;

export class ApprovalStore {
  private readonly operations = new Map<string, ApprovedOperation>();

  constructor(
    private readonly db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {}

  register(operation: string, run: ApprovedOperation): void {
    this.operations.set(operation, run);
  }

  async request(operation: string, args: Record<string, unknown>, summary: string, requestedBy: string): Promise<ApprovalRequest> {
    if (!this.operations.has(operation)) throw new Error(`no approvable operation ${operation}`);
    const id = randomUUID();
    await this.db
      .insertInto('approvals')
      .values({ id, operation, arguments: JSON.stringify(args), summary, requested_by: requestedBy, requested_at: this.now(), status: 'pending', decided_by: null, decided_at: null, result: null })
      .execute();
    return (await this.get(id)) as ApprovalRequest;
  }

  async get(id: string): Promise<ApprovalRequest | undefined> {
    const r = await this.db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? undefined : toRequest(r);
  }

  async list(options: { status?: string; offset: number; limit: number }): Promise<{ items: ApprovalRequest[]; total: number }> {
    let query = this.db.selectFrom('approvals');
    if (options.status !== undefined) query = query.where('status', '=', options.status);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await query.selectAll().orderBy('requested_at', 'desc').limit(options.limit).offset(options.offset).execute();
    return { items: rows.map(toRequest), total };
  }

  /**
   * Approves (and runs) or rejects a pending request. The decider must not be the requester,
   * nor the same user through another session or a token (`userOfActor`).
   * The status moves from pending in one conditional update, so two approvers cannot both run it.
   */
  async decide(id: string, decider: string, approve: boolean): Promise<ApprovalRequest> {
    const request = await this.get(id);
    if (request === undefined) throw new ApiError('E_NOT_FOUND', `no approval request ${id}`);
    if (request.status !== 'pending') throw new ApiError('E_CONFLICT', `approval request ${id} is ${request.status} already`);
    const requester = userOfActor(request.requestedBy);
    if (request.requestedBy === decider || (requester !== undefined && requester === userOfActor(decider))) throw new ApiError('E_FORBIDDEN', 'four eyes: a second administrator must decide, not the one who asked');
    const claimed = await this.db
      .updateTable('approvals')
      .set({ status: approve ? 'approved' : 'rejected', decided_by: decider, decided_at: this.now() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) throw new ApiError('E_CONFLICT', `approval request ${id} was decided meanwhile`);
    if (approve) {
      const run = this.operations.get(request.operation) as ApprovedOperation;
      try {
        const result = await run(request.arguments, decider);
        await this.db.updateTable('approvals').set({ result }).where('id', '=', id).execute();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await this.db.updateTable('approvals').set({ status: 'failed', result: message }).where('id', '=', id).execute();
      }
    }
    return (await this.get(id)) as ApprovalRequest;
  }
}

function toRequest(r: StateSchema['approvals']): ApprovalRequest {
  return {
    id: r.id,
    operation: r.operation,
    arguments: JSON.parse(r.arguments) as Record<string, unknown>,
    summary: r.summary,
    requestedBy: r.requested_by,
    requestedAt: Number(r.requested_at),
    status: r.status as ApprovalRequest['status'],
    decidedBy: r.decided_by,
    decidedAt: r.decided_at === null ? null : Number(r.decided_at),
    result: r.result,
  };
}
