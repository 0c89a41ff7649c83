/**
 * `transaction`: several block actions applied atomically, at one instant for every disk of
 * the VM (QEMU drains all the nodes involved, prepares every action, then commits all or
 * aborts all).
 *
 * QAPI facts relied on (qapi/transaction.json, checked against QEMU 7.2's query-qmp-schema):
 * arguments `{"actions": [TransactionAction], "properties": {"completion-mode": "individual" |
 * "grouped"} (optional)}`, each action `{"type": NAME, "data": ARGS}` where NAME is one of
 * `abort`, `block-dirty-bitmap-add`, `-remove`, `-clear`, `-enable`, `-disable`, `-merge`,
 * `blockdev-backup`, `drive-backup`, `blockdev-snapshot`, `blockdev-snapshot-sync`,
 * `blockdev-snapshot-internal-sync`, and ARGS are exactly that command's arguments. If one
 * action fails, none takes effect and the command returns that action's error. `grouped`
 * completion makes the jobs the transaction starts fail together (not allowed with
 * `sync: none` backups in 7.2, which never "complete").
 * Build actions with the `*Action` functions of dirty-bitmaps.ts and block-jobs.ts.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';

/** One action of a transaction, as QAPI spells it (`data` uses QAPI member names). */
export interface TransactionAction {
  type: string;
  data: Record<string, unknown>;
}

/** Options of {@link transaction}. */
export interface TransactionOptions extends QmpCallOptions {
  completionMode?: 'individual' | 'grouped';
}

/** Runs `actions` atomically; throws the QmpCommandError of the failing action (none applied). */
export async function transaction(qmp: QmpClient, actions: readonly TransactionAction[], options: TransactionOptions = {}): Promise<void> {
  const { completionMode, ...call } = options;
  const args: Record<string, unknown> = { actions };
  if (completionMode !== undefined) args['properties'] = { 'completion-mode': completionMode };
  await qmp.execute('transaction', args, call);
}
