/**
 * The restore wizard's steps, apart from drawing them. The wizard's whole state is in the
 * page's address (`/restore?vm=web1&repo=main&snapshot=ID&what=files`), so a reload, the back
 * button or a link shared with a colleague land on the same step:
 *
 * 1. **VM** (`vm`), 2. **restore point** (`repo` and `snapshot`), 3. **what** (`what`):
 *    browse files, instant recovery, the disks to a path, or a clone as a new VM; a file
 *    snapshot, which has no disks, offers its files: browse them, or restore them to a folder
 *    on the server ({@link actionsFor});
 * 4. **do it**: the chosen action's panel.
 *
 * A later step opens only when every earlier one is chosen; choosing again on an earlier
 * step forgets the later choices (another VM has other snapshots).
 */

export const RESTORE_ACTIONS = ['files', 'instant', 'disks', 'clone', 'files-to-folder'] as const;
export type RestoreAction = (typeof RESTORE_ACTIONS)[number];

export const ACTION_LABELS: Record<RestoreAction, { title: string; description: string }> = {
  files: { title: 'Browse and download files', description: 'Open the snapshot\'s volumes (a file backup\'s files), preview files, download one file or a folder as tar or zip.' },
  instant: { title: 'Instant recovery', description: 'Serve the disks over NBD now, and start a VM from them with the QEMU command shown.' },
  disks: { title: 'Restore the disks to a path', description: 'Write every disk to a folder on the server, in the disk format you pick.' },
  clone: { title: 'Clone as a new VM', description: 'The disks and a VM definition with a new identity (UUID, MAC addresses), beside the original.' },
  'files-to-folder': { title: 'Restore the files to a folder on the server', description: 'Write every file and folder back, with its owner, permissions and times, into an empty folder on the server.' },
};

/** A disk snapshot's actions: its files, its disks served, written out or cloned. */
const DISK_ACTIONS: readonly RestoreAction[] = ['files', 'instant', 'disks', 'clone'];
/** A file snapshot's actions: no disks to serve, write out or clone; its files browsed or written back. */
const FILE_ACTIONS: readonly RestoreAction[] = ['files', 'files-to-folder'];

/** What a restore point holds, as the snapshot list says (`kind`): disks, or files (a host's `coffer backup --files`, a guest agent's backups). */
export type SnapshotKind = 'disk' | 'files';

/** The actions a restore point offers: a file snapshot has no disks to serve, write out or clone, only files to browse or restore to a folder. */
export function actionsFor(kind: SnapshotKind | undefined): readonly RestoreAction[] {
  return kind === 'files' ? FILE_ACTIONS : DISK_ACTIONS;
}

/** The state with an action its restore point does not offer (a link to instant recovery of a file snapshot, to a file snapshot's restore of a disk one) not chosen. */
export function offeredOnly(state: WizardState, kind: SnapshotKind | undefined): WizardState {
  if (state.what === undefined || actionsFor(kind).includes(state.what)) return state;
  const { what: _what, ...chosen } = state;
  return chosen;
}

export const STEP_LABELS = ['VM', 'Restore point', 'What to restore', 'Restore'] as const;

export interface WizardState {
  vm?: string;
  repo?: string;
  snapshot?: string;
  what?: RestoreAction;
}

/** Reads the state from the address's query; unknown or partial values count as not chosen. */
export function readWizard(search: URLSearchParams): WizardState {
  const vm = search.get('vm') ?? '';
  const repo = search.get('repo') ?? '';
  const snapshot = search.get('snapshot') ?? '';
  const what = search.get('what') ?? '';
  if (vm === '') return {};
  if (repo === '' || snapshot === '') return { vm };
  if (!(RESTORE_ACTIONS as readonly string[]).includes(what)) return { vm, repo, snapshot };
  return { vm, repo, snapshot, what: what as RestoreAction };
}

/** The query for a state (only the chosen fields). */
export function writeWizard(state: WizardState): URLSearchParams {
  const out = new URLSearchParams();
  if (state.vm !== undefined) out.set('vm', state.vm);
  if (state.repo !== undefined && state.snapshot !== undefined) {
    out.set('repo', state.repo);
    out.set('snapshot', state.snapshot);
  }
  if (state.what !== undefined) out.set('what', state.what);
  return out;
}

/** The step to show (0-based): the first one not chosen yet, or the last. */
export function currentStep(state: WizardState): number {
  if (state.vm === undefined) return 0;
  if (state.snapshot === undefined) return 1;
  if (state.what === undefined) return 2;
  return 3;
}

/** Going back to step `step` keeps the choices made before it and forgets the rest. */
export function backTo(state: WizardState, step: number): WizardState {
  if (step <= 0) return {};
  if (step === 1) return state.vm === undefined ? {} : { vm: state.vm };
  if (step === 2) return state.snapshot === undefined ? backTo(state, 1) : { ...backTo(state, 1), repo: state.repo as string, snapshot: state.snapshot };
  return state;
}

/** Each step's summary under its label once chosen ("web1", "main · 25 Nov 22:00"…). */
export function stepSummaries(state: WizardState, snapshotTime?: string): string[] {
  return [
    state.vm ?? '',
    state.snapshot === undefined ? '' : `${state.repo ?? ''} · ${snapshotTime ?? state.snapshot.slice(0, 12)}`,
    state.what === undefined ? '' : ACTION_LABELS[state.what].title,
    '',
  ];
}
