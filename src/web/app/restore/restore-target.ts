/**
 * The folder a restore form proposes: inside the first folder the server lets restores write
 * into (`GET /restore-targets`: `restore.allowed-targets`, default DATA/restores), named for
 * the VM and the snapshot, so the form can be sent as it is, the path is one the server
 * accepts, and a restore of another snapshot goes to a folder of its own.
 */
import { useQuery } from '@tanstack/react-query';
import { call } from '../../api/client';

/** `FIRST-TARGET/VM-SNAPSHOT8` (a character a folder name should not hold as `_`); undefined when the server allows no folder. */
export function proposedTarget(targets: readonly string[], vm: string, snapshot: string): string | undefined {
  const first = targets[0];
  if (first === undefined) return undefined;
  const name = `${vm}-${snapshot.slice(0, 8)}`.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${first.replace(/\/+$/, '')}/${name}`;
}

/** The proposed folder once the server has said where restores may go (undefined until then, or if it cannot say). */
export function useProposedTarget(vm: string, snapshot: string): string | undefined {
  const targets = useQuery({ queryKey: ['restore-targets'], queryFn: () => call('get', '/api/v1/restore-targets'), staleTime: 60_000 });
  return targets.data === undefined ? undefined : proposedTarget(targets.data.items, vm, snapshot);
}
