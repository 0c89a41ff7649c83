/**
 * Dirty bitmaps: what changed on a block node since a point in time. Each operation is a
 * command and, with the same arguments, a transaction action (see transaction.ts).
 *
 * QAPI facts relied on (qapi/block-core.json, checked against QEMU 7.2's query-qmp-schema):
 * - `block-dirty-bitmap-add` `{node, name, granularity?, persistent?, disabled?}`: a new,
 *   empty bitmap. `persistent: true` stores it in the qcow2 image when QEMU closes the image
 *   (only qcow2 nodes), so it survives a restart; `disabled: true` creates it not recording.
 *   Granularity defaults to the cluster size (64 KiB for default qcow2), at most 2^31.
 * - `block-dirty-bitmap-remove`, `-clear`, `-enable`, `-disable` take `{node, name}`. A
 *   removed persistent bitmap is also deleted from the image. `busy` bitmaps (used by an
 *   export or a job) refuse all of them.
 * - `block-dirty-bitmap-merge` `{node, target, bitmaps: [name | {node, name}]}` ORs the
 *   sources into `target`, which may be disabled (the way to freeze a copy of a recording
 *   bitmap, tested); the sources are not changed. Busy or inconsistent targets refuse it.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import type { TransactionAction } from './transaction.js';

/** A bitmap by its node and name. */
export interface DirtyBitmapRef {
  node: string;
  name: string;
}

/** Arguments of `block-dirty-bitmap-add`. */
export interface DirtyBitmapAddArgs extends DirtyBitmapRef {
  granularity?: number;
  persistent?: boolean;
  disabled?: boolean;
}

/** Arguments of `block-dirty-bitmap-merge`: sources are names on `node` or refs elsewhere. */
export interface DirtyBitmapMergeArgs {
  node: string;
  target: string;
  bitmaps: readonly (string | DirtyBitmapRef)[];
}

type SimpleOp = 'remove' | 'clear' | 'enable' | 'disable';

/** The `block-dirty-bitmap-add` action. */
export function bitmapAddAction(args: DirtyBitmapAddArgs): TransactionAction {
  const data: Record<string, unknown> = { node: args.node, name: args.name };
  if (args.granularity !== undefined) data['granularity'] = args.granularity;
  if (args.persistent !== undefined) data['persistent'] = args.persistent;
  if (args.disabled !== undefined) data['disabled'] = args.disabled;
  return { type: 'block-dirty-bitmap-add', data };
}

/** The `block-dirty-bitmap-merge` action. */
export function bitmapMergeAction(args: DirtyBitmapMergeArgs): TransactionAction {
  return { type: 'block-dirty-bitmap-merge', data: { node: args.node, target: args.target, bitmaps: [...args.bitmaps] } };
}

/** The `block-dirty-bitmap-remove|clear|enable|disable` action. */
export function bitmapAction(op: SimpleOp, ref: DirtyBitmapRef): TransactionAction {
  return { type: `block-dirty-bitmap-${op}`, data: { node: ref.node, name: ref.name } };
}

/** Runs one action as a command of the same name and arguments. */
async function run(qmp: QmpClient, action: TransactionAction, options?: QmpCallOptions): Promise<void> {
  await qmp.execute(action.type, action.data, options);
}

export const addDirtyBitmap = (qmp: QmpClient, args: DirtyBitmapAddArgs, options?: QmpCallOptions): Promise<void> =>
  run(qmp, bitmapAddAction(args), options);
export const mergeDirtyBitmaps = (qmp: QmpClient, args: DirtyBitmapMergeArgs, options?: QmpCallOptions): Promise<void> =>
  run(qmp, bitmapMergeAction(args), options);
export const removeDirtyBitmap = (qmp: QmpClient, ref: DirtyBitmapRef, options?: QmpCallOptions): Promise<void> =>
  run(qmp, bitmapAction('remove', ref), options);
export const clearDirtyBitmap = (qmp: QmpClient, ref: DirtyBitmapRef, options?: QmpCallOptions): Promise<void> =>
  run(qmp, bitmapAction('clear', ref), options);
export const enableDirtyBitmap = (qmp: QmpClient, ref: DirtyBitmapRef, options?: QmpCallOptions): Promise<void> =>
  run(qmp, bitmapAction('enable', ref), options);
export const disableDirtyBitmap = (qmp: QmpClient, ref: DirtyBitmapRef, options?: QmpCallOptions): Promise<void> =>
  run(qmp, bitmapAction('disable', ref), options);
