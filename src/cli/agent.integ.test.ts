/**
 * `coffer backup --qemu` with a guest agent, end to end: a real Linux guest running qemu-ga
 * (TCG, src/testing/agent-guest.ts) is backed up application-consistent, `--no-freeze` and
 * a QEMU whose agent channel nobody answers give crash-consistent snapshots that say why,
 * and `coffer snapshots` (text and --json) shows each.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startAgentGuest, startTestVm, type AgentGuest } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'agent cli' };
let guest: AgentGuest;
let work: string;
let repo: string;

interface Consistency {
  level: string;
  reason?: string;
  frozenFilesystems?: number;
  frozenMs?: number;
}

before(async () => {
  work = await makeWorkDir('agent');
  repo = join(work, 'repo');
  guest = await startAgentGuest();
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(async () => {
  await guest?.stop();
  await removeDir(work);
});

test('a backup of a guest with an agent is application-consistent, and snapshots shows it', async () => {
  const backup = await cofferJson<BackupJson & { consistency?: Consistency }>(['backup', '-r', repo, '--vm', 'guest', '--qemu', guest.vm.qmpSocket], { env, timeoutMs: 120_000 });
  assert.equal(backup.consistency?.level, 'application');
  assert.ok((backup.consistency?.frozenFilesystems ?? 0) >= 1);

  const text = await coffer(['backup', '-r', repo, '--vm', 'guest', '--qemu', guest.vm.qmpSocket, '--no-freeze', '--guest-agent', guest.agentSocket], { env });
  assertExit(text, 2);
  assert.match(assertOneLineError(text), /contradicts --no-freeze/);
  const unfrozen = await coffer(['backup', '-r', repo, '--vm', 'guest', '--qemu', guest.vm.qmpSocket, '--no-freeze'], { env, timeoutMs: 120_000 });
  assertExit(unfrozen, 0);
  assert.match(unfrozen.stdout.toString('utf8'), /^consistency: crash \(--no-freeze\)$/m);

  const listed = await cofferJson<{ id: string; consistency?: Consistency }[]>(['snapshots', '-r', repo, '--vm', 'guest'], { env });
  assert.equal(listed.length, 2);
  assert.deepEqual(listed[0]?.consistency, backup.consistency);
  assert.deepEqual(listed[1]?.consistency, { level: 'crash', reason: '--no-freeze' });
  const table = await coffer(['snapshots', '-r', repo, '--vm', 'guest'], { env });
  assertExit(table, 0);
  assert.match(table.stdout.toString('utf8'), new RegExp(`application \\(${backup.consistency?.frozenFilesystems} fs frozen \\d+ ms\\)`));
});

test('an agent channel nobody answers: the backup succeeds crash-consistent within the sync deadline', async () => {
  const socket = join(work, 'silent.sock');
  const vm = await startTestVm({
    extraArgs: ['-device', 'virtio-serial-pci', '-chardev', `socket,path=${socket},server=on,wait=off,id=ga`, '-device', 'virtserialport,chardev=ga,name=org.qemu.guest_agent.0'],
  });
  try {
    const backup = await cofferJson<BackupJson & { consistency?: Consistency }>(['backup', '-r', repo, '--vm', 'silent', '--qemu', vm.qmpSocket], { env, timeoutMs: 120_000 });
    assert.deepEqual(backup.consistency, { level: 'crash', reason: `the guest agent at ${socket} did not answer within 5 s` });
  } finally {
    await vm.stop();
  }
});

test('agent options without --qemu are a usage error', async () => {
  const result = await coffer(['backup', '-r', repo, '--vm', 'x', '--no-freeze', '/some/disk.raw'], { env });
  assertExit(result, 2);
  assert.match(assertOneLineError(result), /use it with --qemu or --libvirt/);
  const timeout = await coffer(['backup', '-r', repo, '--vm', 'x', '--qemu', guest.vm.qmpSocket, '--freeze-timeout', 'soon'], { env });
  assertExit(timeout, 2);
  assert.match(assertOneLineError(timeout), /--freeze-timeout soon/);
});
