/**
 * The snapshot's disks restored to a folder on the server (POST …/restore `{to, format}`), or,
 * with `clone`, as a new VM with a new identity (`asVm`: the disks and a libvirt XML or QEMU
 * script with a new UUID and MAC addresses). The server refuses a path outside its allowed
 * restore targets; the page shows its answer as it is. The task is then followed on its page.
 */
import { Button, Checkbox, Select, Stack, TextInput } from '@mantine/core';
import { useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call } from '../../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import type { SnapshotRef } from './FileBrowser';
import { TaskStarted } from './TaskStarted';

const FORMATS = [
  { value: 'qcow2', label: 'qcow2 (QEMU, KVM, Proxmox)' },
  { value: 'raw', label: 'raw (any hypervisor, full size)' },
  { value: 'vmdk', label: 'VMDK (VMware)' },
  { value: 'vhdx', label: 'VHDX (Hyper-V)' },
  { value: 'vhd', label: 'VHD (older Hyper-V, Azure)' },
] as const;
type Format = (typeof FORMATS)[number]['value'];

export function RestoreDisksPanel({ target, vm, clone }: { target: SnapshotRef; vm: string; clone: boolean }) {
  const [to, setTo] = useState('');
  const [format, setFormat] = useState<Format>('qcow2');
  const [name, setName] = useState(`${vm}-restored`);
  const [overwrite, setOverwrite] = useState(false);
  const restore = useMutation({
    mutationFn: () => call('post', '/api/v1/repositories/{repo}/snapshots/{snapshot}/restore', { params: target, body: { to, format, overwrite, ...(clone ? { asVm: name } : {}) } }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    restore.mutate();
  };
  return (
    <form onSubmit={submit} aria-label={clone ? 'Clone as a new VM' : 'Restore the disks'}>
      <Stack gap="sm" maw={560}>
        <TextInput label="Folder on the server" description="An absolute path the server may write to (its allowed restore targets)" placeholder="/var/lib/libvirt/images/restore" required value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        <Select label="Disk format" data={FORMATS as unknown as { value: string; label: string }[]} value={format} onChange={(v) => setFormat((v ?? 'qcow2') as Format)} allowDeselect={false} />
        {clone && <TextInput label="New VM's name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />}
        <Checkbox label="Replace files already there" checked={overwrite} onChange={(e) => setOverwrite(e.currentTarget.checked)} />
        <Button type="submit" loading={restore.isPending} w="fit-content">
          {clone ? 'Clone as a new VM' : 'Restore the disks'}
        </Button>
        {restore.isError && <ProblemAlert error={restore.error} context={clone ? 'Starting the clone' : 'Starting the restore'} />}
        <TaskStarted answer={restore.data} />
      </Stack>
    </form>
  );
}
