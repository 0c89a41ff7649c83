/**
 * A file snapshot's files restored into a folder on the server (POST …/restore `{to}`): every
 * file, folder and link with its recorded permissions, times and owners, their paths kept
 * below the folder (a backed-up /etc/motd lands in FOLDER/etc/motd). The folder, which must
 * be empty or new, is proposed inside the server's allowed restore targets (restore-target.ts);
 * the server's refusal (outside those targets: 403; not an absolute path: 400) is shown as it
 * comes. The task is then followed on its page.
 */
import { Button, Stack, TextInput } from '@mantine/core';
import { useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call } from '../../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import type { SnapshotRef } from './FileBrowser';
import { useProposedTarget } from './restore-target';
import { TaskStarted } from './TaskStarted';

export function RestoreFilesPanel({ target, vm }: { target: SnapshotRef; vm: string }) {
  const proposed = useProposedTarget(vm, target.snapshot);
  const [typed, setTyped] = useState<string | undefined>(undefined);
  const to = typed ?? proposed ?? '';
  const restore = useMutation({ mutationFn: () => call('post', '/api/v1/repositories/{repo}/snapshots/{snapshot}/restore', { params: target, body: { to } }) });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    restore.mutate();
  };
  return (
    <form onSubmit={submit} aria-label="Restore the files">
      <Stack gap="sm" maw={560}>
        <TextInput
          label="Folder on the server"
          description="An empty or new folder inside the server's allowed restore targets; the files keep their paths below it"
          required
          value={to}
          onChange={(e) => setTyped(e.currentTarget.value)}
        />
        <Button type="submit" loading={restore.isPending} w="fit-content">
          Restore the files
        </Button>
        {restore.isError && <ProblemAlert error={restore.error} context="Starting the restore" />}
        <TaskStarted answer={restore.data} />
      </Stack>
    </form>
  );
}
