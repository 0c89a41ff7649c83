/**
 * The restore wizard, the help-desk operator's path: pick the VM, a restore point on its
 * calendar (or find the night that still had a file by its name), what to restore, then do
 * it: browse and download files, instant recovery, the disks to a folder, or a clone (a file
 * snapshot offers its files only: browsed, or restored to a folder on the server). The state
 * is the page's address (restore/wizard.ts).
 */
import { Badge, Card, SimpleGrid, Stack, Text, TextInput, UnstyledButton } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useSearchParams } from 'react-router';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';
import { FileBrowser } from '../restore/FileBrowser';
import { InstantRecoveryPanel } from '../restore/InstantRecoveryPanel';
import { PointStep, useRestorePoints } from '../restore/PointStep';
import { RestoreDisksPanel } from '../restore/RestoreDisksPanel';
import { RestoreFilesPanel } from '../restore/RestoreFilesPanel';
import { RestoreSteps } from '../restore/RestoreSteps';
import { ACTION_LABELS, actionsFor, backTo, currentStep, offeredOnly, readWizard, writeWizard, type RestoreAction, type WizardState } from '../restore/wizard';

export function RestorePage() {
  const [params, setParams] = useSearchParams();
  const asked = readWizard(params);
  const { points } = useRestorePoints(asked.vm);
  const point = points.find((p) => p.repo === asked.repo && p.id === asked.snapshot);
  // A file snapshot has no disks, a disk snapshot no file restore: an action in the address its
  // restore point does not offer is not chosen (the "what" step shows what is). Until the
  // point is read, the address is taken as it is (a reload stays on its step).
  const state = point === undefined ? asked : offeredOnly(asked, point.kind);
  const go = (next: WizardState) => setParams(writeWizard(next));
  const time = point?.time;
  const step = currentStep(state);
  return (
    <>
      <PageTitle>Restore</PageTitle>
      <RestoreSteps state={state} snapshotTime={time === undefined ? undefined : formatTime(time)} onBack={(s) => go(backTo(state, s))} />
      {step === 0 && <VmStep onChoose={(vm) => go({ vm })} />}
      {step === 1 && state.vm !== undefined && <PointStep vm={state.vm} onChoose={(p) => go({ vm: state.vm, repo: p.repo, snapshot: p.id })} />}
      {step === 2 && <ActionStep actions={actionsFor(point?.kind)} onChoose={(what) => go({ ...state, what })} />}
      {step === 3 && state.repo !== undefined && state.snapshot !== undefined && state.vm !== undefined && (
        <Card withBorder component="section" aria-label={ACTION_LABELS[state.what as RestoreAction].title}>
          {state.what === 'files' && <FileBrowser target={{ repo: state.repo, snapshot: state.snapshot }} />}
          {state.what === 'instant' && <InstantRecoveryPanel target={{ repo: state.repo, snapshot: state.snapshot }} />}
          {(state.what === 'disks' || state.what === 'clone') && <RestoreDisksPanel key={state.what} target={{ repo: state.repo, snapshot: state.snapshot }} vm={state.vm} clone={state.what === 'clone'} />}
          {state.what === 'files-to-folder' && <RestoreFilesPanel target={{ repo: state.repo, snapshot: state.snapshot }} vm={state.vm} />}
        </Card>
      )}
    </>
  );
}

function VmStep({ onChoose }: { onChoose: (vm: string) => void }) {
  const [search, setSearch] = useState('');
  const [debounced] = useDebouncedValue(search, 250);
  const vms = useQuery({ queryKey: ['vms', 'restore', debounced], queryFn: () => call('get', '/api/v1/vms', { query: { limit: 60, search: debounced } }) });
  return (
    <Stack gap="sm">
      <TextInput label="Which VM?" placeholder="name contains…" value={search} onChange={(e) => setSearch(e.currentTarget.value)} maw={320} />
      <QueryView query={vms} context="Reading the VMs">
        {(list) =>
          list.items.length === 0 ? (
            <Text c="dimmed">No VM matches.</Text>
          ) : (
            <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }} spacing="xs" role="list" aria-label="VMs">
              {list.items.map((vm) => (
                <Card key={vm.name} withBorder padding="xs" role="listitem">
                  <UnstyledButton onClick={() => onChoose(vm.name)}>
                    <Text fw={600}>{vm.name}</Text>
                    <Text size="xs" c="dimmed">
                      on {vm.host}
                    </Text>
                  </UnstyledButton>
                </Card>
              ))}
            </SimpleGrid>
          )
        }
      </QueryView>
    </Stack>
  );
}

function ActionStep({ actions, onChoose }: { actions: readonly RestoreAction[]; onChoose: (what: RestoreAction) => void }) {
  const session = useSession();
  return (
    <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="sm" role="list" aria-label="What to restore">
      {actions.map((what) => {
        const allowed = what === 'files' ? session.can('files.browse') : session.can('restore.run');
        return (
          <Card key={what} withBorder role="listitem" padding="sm">
            <UnstyledButton onClick={() => onChoose(what)} disabled={!allowed} style={{ opacity: allowed ? 1 : 0.6 }}>
              <Text fw={600}>{ACTION_LABELS[what].title}</Text>
              <Text size="sm">{ACTION_LABELS[what].description}</Text>
              {!allowed && (
                <Badge color="gray" variant="filled" mt={4}>
                  your role does not allow this
                </Badge>
              )}
            </UnstyledButton>
          </Card>
        );
      })}
    </SimpleGrid>
  );
}
