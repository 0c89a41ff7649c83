/**
 * What QEMU is and what it can do: `query-version`, `query-status`, `query-commands`.
 *
 * QAPI facts relied on (checked against QEMU 7.2's query-qmp-schema):
 * - `query-version` returns `VersionInfo` `{"qemu": {"major", "minor", "micro"}, "package"}`,
 *   the same object as the greeting's `version`.
 * - `query-status` returns `StatusInfo` `{"running": bool, "status": RunState, "singlestep"}`;
 *   `RunState` is one of `running`, `paused` (after `stop`), `prelaunch` (started with `-S`),
 *   `inmigrate`, `postmigrate`, `finish-migrate`, `suspended`, `shutdown`, `guest-panicked`,
 *   `io-error`, `internal-error`, `watchdog`, `restore-vm`, `save-vm`, `debug`, `colo`. The
 *   list grows between versions, so it is kept as a string.
 * - `query-commands` returns `[{"name": str}]`, every command this QEMU accepts: the way to
 *   probe for a feature (e.g. `block-export-add` since 5.0, `snapshot-access` filter needs the
 *   `blockdev-add` driver, not a command) before relying on it.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import { arrayOf, asBoolean, asObject, asString } from './json-shape.js';
import { parseVersion, type QemuVersion } from './qmp-message.js';

/** `query-version`. */
export async function queryVersion(qmp: QmpClient, options?: QmpCallOptions): Promise<QemuVersion> {
  return parseVersion(await qmp.execute('query-version', undefined, options), 'query-version');
}

/** The VM's run state, from `query-status`. */
export interface VmStatus {
  running: boolean;
  /** QAPI `RunState`: `running`, `paused`, `prelaunch`, `shutdown`, `io-error`… */
  status: string;
}

/** `query-status`. */
export async function queryStatus(qmp: QmpClient, options?: QmpCallOptions): Promise<VmStatus> {
  const reply = asObject(await qmp.execute('query-status', undefined, options), 'query-status');
  return { running: asBoolean(reply['running'], 'query-status.running'), status: asString(reply['status'], 'query-status.status') };
}

/**
 * `cont`: resumes a paused VM (run state `paused` or `io-error`; requests that failed under
 * `werror=stop`/`enospc` are retried).
 */
export async function cont(qmp: QmpClient, options?: QmpCallOptions): Promise<void> {
  await qmp.execute('cont', undefined, options);
}

/** `query-commands`: the names of every command this QEMU accepts. */
export async function queryCommands(qmp: QmpClient, options?: QmpCallOptions): Promise<Set<string>> {
  const reply = await qmp.execute('query-commands', undefined, options);
  return new Set(arrayOf(reply, 'query-commands', (item, where) => asString(asObject(item, where)['name'], `${where}.name`)));
}

/** The commands of `needed` that this QEMU lacks (empty when it has them all). */
export async function missingCommands(qmp: QmpClient, needed: readonly string[], options?: QmpCallOptions): Promise<string[]> {
  const have = await queryCommands(qmp, options);
  return needed.filter((name) => !have.has(name));
}
