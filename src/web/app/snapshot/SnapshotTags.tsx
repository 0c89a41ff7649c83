/**
 * A snapshot's tags on its page, and for who may change them (`snapshot.delete`, Admin) the
 * control to add one (a `legal-hold` that `forget --keep-tag` keeps) or remove one: PUT
 * /repositories/{repo}/snapshots/{id}/tags with the whole new list, as `coffer tag` writes a
 * tag record. With four eyes on (`fourEyes` of /auth/me), removing a tag waits for a second
 * administrator: the control says so before, and the page after (the server answers 202).
 */
import { Badge, Button, CloseButton, Group, Stack, Text, TextInput } from '@mantine/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { ProblemAlert } from '../components/ProblemAlert';
import { formatTime } from '../format';

/** The rule `backup --tag` and the server apply: 1 to 200 characters, no control character. */
const TAG = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** Why `tag` cannot be added to `tags`, or undefined when it can. */
export function tagProblem(tag: string, tags: readonly string[]): string | undefined {
  if (tag === '') return undefined;
  if (!TAG.test(tag)) return 'A tag is 1 to 200 characters, without control characters.';
  if (tags.includes(tag)) return `The snapshot has the tag ${tag} already.`;
  return undefined;
}

export interface TagEditorProps {
  tags: readonly string[];
  /** Shows the add and remove controls. */
  editable: boolean;
  /** Four eyes: a removal waits for a second administrator's approval. */
  removalNeedsApproval: boolean;
  /** A change is under way: the controls wait. */
  busy?: boolean;
  /** The whole new list. */
  onChange(next: string[]): void;
}

/** The tags as badges; when editable, each with a remove button, and a field to add one. */
export function TagEditor({ tags, editable, removalNeedsApproval, busy = false, onChange }: TagEditorProps) {
  const [draft, setDraft] = useState('');
  const problem = tagProblem(draft, tags);
  const add = (e: FormEvent) => {
    e.preventDefault();
    if (draft === '' || problem !== undefined) return;
    onChange([...tags, draft]);
    setDraft('');
  };
  const approval = removalNeedsApproval ? " (waits for a second administrator's approval)" : '';
  return (
    <Stack gap={4} data-testid="snapshot-tags">
      <Group gap={6}>
        <Text size="sm">Tags:</Text>
        {tags.length === 0 && (
          <Text size="sm" c="dimmed">
            none
          </Text>
        )}
        {tags.map((tag) => (
          <Badge
            key={tag}
            variant="light"
            tt="none"
            rightSection={editable ? <CloseButton size="xs" disabled={busy} aria-label={`Remove tag ${tag}${approval}`} title={`Remove tag ${tag}${approval}`} onClick={() => onChange(tags.filter((t) => t !== tag))} /> : undefined}
          >
            {tag}
          </Badge>
        ))}
      </Group>
      {editable && (
        <form onSubmit={add} aria-label="Add a tag">
          <Group gap={6} align="flex-start">
            <TextInput size="xs" aria-label="New tag" placeholder="legal-hold" value={draft} onChange={(e) => setDraft(e.currentTarget.value)} error={problem} w={220} />
            <Button size="xs" type="submit" variant="light" disabled={busy || draft === '' || problem !== undefined}>
              Add tag
            </Button>
          </Group>
        </form>
      )}
      {editable && removalNeedsApproval && (
        <Text size="xs" c="dimmed">
          Four eyes is on: removing a tag waits for a second administrator's approval (a tag that retention keeps, once removed, lets a forget remove the snapshot). Adding applies at once.
        </Text>
      )}
    </Stack>
  );
}

export interface SnapshotTagsProps {
  repo: string;
  snapshot: { id: string; vm: string; tags: string[]; tagsSetAt?: string; originalTags?: string[] };
}

/** The snapshot page's tags: the editor wired to the API, and when the tags were set after the backup. */
export function SnapshotTags({ repo, snapshot }: SnapshotTagsProps) {
  const session = useSession();
  const queryClient = useQueryClient();
  const [notice, setNotice] = useState<string>();
  const editable = session.canOn('snapshot.delete', `/repositories/${repo}`) || session.canOn('snapshot.delete', `/vms/${snapshot.vm}`);
  const change = useMutation({
    mutationFn: (tags: string[]) => call('put', '/api/v1/repositories/{repo}/snapshots/{snapshot}/tags', { params: { repo, snapshot: snapshot.id }, body: { tags } }),
    onMutate: () => setNotice(undefined),
    onSuccess: (answer, tags) => {
      const removed = snapshot.tags.filter((t) => !tags.includes(t));
      if (answer !== undefined && 'approval' in answer) {
        setNotice(`Removing ${removed.join(', ')} waits for a second administrator's approval (Approvals).`);
        return;
      }
      void queryClient.invalidateQueries({ queryKey: ['snapshot', repo] });
      void queryClient.invalidateQueries({ queryKey: ['snapshots', repo] });
    },
  });
  return (
    <Stack gap={4}>
      <TagEditor tags={snapshot.tags} editable={editable} removalNeedsApproval={session.me?.fourEyes === true} busy={change.isPending} onChange={(next) => change.mutate(next)} />
      {snapshot.tagsSetAt !== undefined && (
        <Text size="sm" c="dimmed">
          tags set {formatTime(snapshot.tagsSetAt)}
          {snapshot.originalTags !== undefined && `, backed up with ${snapshot.originalTags.length === 0 ? 'none' : snapshot.originalTags.join(', ')}`}
        </Text>
      )}
      {notice !== undefined && (
        <Text size="sm" role="status">
          {notice}
        </Text>
      )}
      {change.isError && <ProblemAlert error={change.error} context="Changing the tags" />}
    </Stack>
  );
}
