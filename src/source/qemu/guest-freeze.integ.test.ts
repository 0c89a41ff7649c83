/**
 * Freezing around the instant of capture, against a real Linux guest running the real
 * qemu-ga (TCG, src/testing/agent-guest.ts): an application-consistent snapshot that records
 * the frozen count and time; a thaw after a transaction that really fails (its fleecing
 * node deleted from a second monitor by the pre-capture hook) and after a freeze that timed
 * out, or an abort when the freeze is due; `--no-freeze`; and QEMUs without a guest OS whose channel is absent or unanswered.
 * After each capture the agent itself must say `thawed`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../../backup/index.js';
import { blockdevDel, GuestAgentClient, guestFsfreezeStatus, queryNamedBlockNodes, QmpClient } from '../../qmp/index.js';
import { LocalBackend, initRepository, listSnapshots, openRepository, type Repository } from '../../repo/index.js';
import { startAgentGuest, startTestVm, type AgentGuest } from '../../testing/index.js';
import { openQemuSource, type FreezeEvent, type QemuSourceOptions } from '../index.js';

let guest: AgentGuest;
let monitor: QmpClient;
let repo: Repository;
let work: string;

before(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-freeze-test-'));
  const testSocket = path.join(work, 'test.qmp');
  guest = await startAgentGuest({ extraArgs: ['-qmp', `unix:${testSocket},server=on,wait=off`] });
  monitor = await QmpClient.connect({ path: testSocket });
  const backend = new LocalBackend(path.join(work, 'repo'));
  await initRepository(backend, { passphrase: 'freeze', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(backend, { passphrase: 'freeze', threads: 2 });
});
after(async () => {
  await monitor?.close();
  await guest?.stop();
  await repo?.close();
  await fs.rm(work, { recursive: true, force: true });
});

function sourceOptions(events: FreezeEvent[], extra: Partial<QemuSourceOptions> = {}, agent: QemuSourceOptions['guestAgent'] = {}): QemuSourceOptions {
  return { vm: 'agent-guest', qmp: { path: guest.vm.qmpSocket }, ...extra, guestAgent: { onEvent: (e) => events.push(e), ...agent } };
}

async function agentStatus(): Promise<string> {
  const agent = await GuestAgentClient.connect(guest.agentSocket, { timeoutMs: 20_000 });
  try {
    return await guestFsfreezeStatus(agent);
  } finally {
    await agent.close();
  }
}

test('a live backup freezes the guest\'s filesystems at the instant and the snapshot says application-consistent', async () => {
  const events: FreezeEvent[] = [];
  const source = await openQemuSource(sourceOptions(events));
  let id: string;
  try {
    const snapshot = await backupVm(repo, source);
    id = snapshot.id;
  } finally {
    await source.close();
  }
  assert.deepEqual(events.map((e) => e.type), ['frozen', 'thawed']);
  const frozen = events[0]?.type === 'frozen' ? events[0].filesystems : 0;
  assert.ok(frozen >= 1, `the agent froze ${frozen} filesystem(s)`);
  assert.equal(events[1]?.type === 'thawed' ? events[1].filesystems : -1, frozen, 'thaw thawed what freeze froze');
  const stored = (await listSnapshots(repo, { vm: 'agent-guest' })).find((s) => s.id === id);
  assert.equal(stored?.consistency?.level, 'application');
  assert.equal(stored?.consistency?.frozenFilesystems, frozen);
  assert.ok(Number.isSafeInteger(stored?.consistency?.frozenMs) && (stored?.consistency?.frozenMs ?? -1) >= 0);
  assert.equal(stored?.consistency?.reason, undefined);
  assert.equal(await agentStatus(), 'thawed');
});

test('a transaction that fails after the freeze is followed by a thaw', async () => {
  const events: FreezeEvent[] = [];
  const sabotage = async (): Promise<void> => {
    // The fleecing overlay exists once the pre-capture hook runs; without it the transaction fails.
    for (const node of await queryNamedBlockNodes(monitor)) if (node.nodeName?.startsWith('coffer-fleece-')) await blockdevDel(monitor, node.nodeName);
  };
  await assert.rejects(openQemuSource(sourceOptions(events, { hooks: { beforeCapture: sabotage } })), (error: Error & { code?: string }) => error.code === 'E_SOURCE_UNREADABLE' && /coffer-fleece/.test(error.message));
  assert.deepEqual(events.map((e) => e.type), ['frozen', 'thawed']);
  assert.equal(await agentStatus(), 'thawed');
});

test('a freeze that times out is followed by a thaw, and the capture goes on crash-consistent', async () => {
  const events: FreezeEvent[] = [];
  const source = await openQemuSource(sourceOptions(events, {}, { agentSocket: guest.agentSocket, freezeTimeoutMs: 1 }));
  try {
    assert.equal(source.consistency?.level, 'crash');
    assert.match(source.consistency?.reason ?? '', /did not finish freezing within 0.001 s/);
  } finally {
    await source.close();
  }
  assert.deepEqual(events.map((e) => e.type), ['crash-consistent', 'thawed'], 'the late freeze was thawed: the agent ran it before the thaw');
  assert.equal(await agentStatus(), 'thawed');
});

test('an abort (Ctrl-C) when the freeze is due stops the capture and still thaws', async () => {
  const events: FreezeEvent[] = [];
  const controller = new AbortController();
  const options = sourceOptions(events, { signal: controller.signal, hooks: { beforeCapture: async () => controller.abort() } });
  await assert.rejects(openQemuSource(options), { code: 'E_INTERRUPTED' });
  assert.deepEqual(events, [{ type: 'crash-consistent', reason: 'interrupted while freezing' }, { type: 'thawed', filesystems: 0, frozenMs: 0 }]);
  assert.equal(await agentStatus(), 'thawed');
});

test('--no-freeze leaves the guest alone and says so', async () => {
  const events: FreezeEvent[] = [];
  const source = await openQemuSource(sourceOptions(events, {}, { freeze: false }));
  await source.close();
  assert.deepEqual(source.consistency, { level: 'crash', reason: '--no-freeze' });
  assert.deepEqual(events, [{ type: 'crash-consistent', reason: '--no-freeze' }]);
});

test('without a channel, or with one nobody answers, the capture is crash-consistent with the reason', async () => {
  const socket = path.join(work, 'silent.sock');
  const silent = await startTestVm({
    extraArgs: ['-device', 'virtio-serial-pci', '-chardev', `socket,path=${socket},server=on,wait=off,id=ga`, '-device', 'virtserialport,chardev=ga,name=org.qemu.guest_agent.0'],
  });
  const bare = await startTestVm();
  try {
    const quiet = await openQemuSource({ vm: 'silent', qmp: { path: silent.qmpSocket }, guestAgent: { syncTimeoutMs: 1000 } });
    await quiet.close();
    assert.deepEqual(quiet.consistency, { level: 'crash', reason: `the guest agent at ${socket} did not answer within 1 s` });
    const none = await openQemuSource({ vm: 'bare', qmp: { path: bare.qmpSocket } });
    await none.close();
    assert.deepEqual(none.consistency, { level: 'crash', reason: 'no guest agent channel' });
  } finally {
    await silent.stop();
    await bare.stop();
  }
});
