/**
 * The guest agent client and the channel lookup against a real Linux guest running the real
 * qemu-ga 7.2 (booted under TCG, see src/testing/agent-guest.ts), and against channels with
 * no agent behind them (a QEMU without a guest OS).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, startAgentGuest, startTestVm, type AgentGuest } from '../testing/index.js';
import {
  findGuestAgentChannel,
  GuestAgentClient,
  GuestAgentCommandError,
  guestFsfreezeFreeze,
  guestFsfreezeStatus,
  guestFsfreezeThaw,
  guestInfo,
  guestPing,
  QmpClient,
} from './index.js';

let guest: AgentGuest;

before(async () => {
  guest = await startAgentGuest();
});
after(async () => {
  await guest?.stop();
});

async function withAgent<T>(fn: (agent: GuestAgentClient) => Promise<T>): Promise<T> {
  const agent = await GuestAgentClient.connect(guest.agentSocket, { timeoutMs: 20_000 });
  try {
    return await fn(agent);
  } finally {
    await agent.close();
  }
}

test('ping and info from the real agent', async () => {
  await withAgent(async (agent) => {
    await guestPing(agent);
    const info = await guestInfo(agent);
    assert.match(info.version, /^\d+\.\d+/);
    assert.ok(info.commands.some((c) => c.name === 'guest-fsfreeze-freeze' && c.enabled), 'fsfreeze is offered');
  });
});

test('freeze freezes the mounted ext4, refuses a second freeze, and thaw thaws it', async () => {
  await withAgent(async (agent) => {
    assert.equal(await guestFsfreezeStatus(agent), 'thawed');
    const frozen = await guestFsfreezeFreeze(agent);
    assert.ok(frozen >= 1, `frozen ${frozen}`);
    try {
      assert.equal(await guestFsfreezeStatus(agent), 'frozen');
      await assert.rejects(guestFsfreezeFreeze(agent), (error: unknown) => error instanceof GuestAgentCommandError && /frozen/.test(error.desc));
    } finally {
      assert.equal(await guestFsfreezeThaw(agent), frozen);
    }
    assert.equal(await guestFsfreezeStatus(agent), 'thawed');
    assert.equal(await guestFsfreezeThaw(agent), 0, 'thawing a thawed guest is harmless');
  });
});

test('a new client resynchronises after one that left a half-written request and unread replies', async () => {
  await new Promise<void>((resolve, reject) => {
    const rude = net.createConnection({ path: guest.agentSocket }, () => {
      rude.write('{"execute":"guest-info","id":"old"}\n{"execute":"guest-ping","id":"old2"}\n{"execute":"guest-fsfreeze-st');
      setTimeout(() => {
        rude.destroy();
        resolve();
      }, 300);
    });
    rude.once('error', reject);
  });
  await withAgent(async (agent) => {
    await guestPing(agent);
    assert.equal(await guestFsfreezeStatus(agent), 'thawed');
  });
});

test('a reply that comes after its deadline is dropped, not taken for the next command\'s', async () => {
  const qmp = await QmpClient.connect({ path: guest.vm.qmpSocket });
  try {
    await withAgent(async (agent) => {
      await qmp.execute('stop'); // the guest's vCPUs pause: the agent cannot answer until `cont`
      try {
        await assert.rejects(agent.execute('guest-fsfreeze-status', undefined, { timeoutMs: 300 }), { code: 'E_TIMEOUT' });
      } finally {
        await qmp.execute('cont');
      }
      await guestPing(agent); // would fail on the string "thawed" if the late reply were taken for its answer
      assert.equal(await guestFsfreezeStatus(agent), 'thawed');
    });
  } finally {
    await qmp.close();
  }
});

test('the channel is found through QMP, and reported in use while a client holds it', async () => {
  const qmp = await QmpClient.connect({ path: guest.vm.qmpSocket });
  try {
    assert.deepEqual(await findGuestAgentChannel(qmp), { kind: 'socket', path: guest.agentSocket, chardev: 'qga0', inUse: false });
    await withAgent(async () => {
      const held = await findGuestAgentChannel(qmp);
      assert.equal(held.kind === 'socket' && held.inUse, true);
    });
  } finally {
    await qmp.close();
  }
});

test('a channel with no agent behind it times out; a VM without one has none', async () => {
  const dir = await makeTempDir('coffer-noagent');
  const socket = join(dir.path, 'qga.sock');
  const vm = await startTestVm({
    extraArgs: ['-device', 'virtio-serial-pci', '-chardev', `socket,path=${socket},server=on,wait=off,id=ga`, '-device', 'virtserialport,chardev=ga,name=org.qemu.guest_agent.0'],
  });
  const bare = await startTestVm();
  try {
    const started = Date.now();
    await assert.rejects(GuestAgentClient.connect(socket, { timeoutMs: 500 }), (error: Error & { code?: string }) => error.code === 'E_TIMEOUT' && /is qemu-ga running/.test(error.message));
    assert.ok(Date.now() - started < 5_000);
    const qmp = await QmpClient.connect({ path: vm.qmpSocket });
    assert.deepEqual(await findGuestAgentChannel(qmp), { kind: 'socket', path: socket, chardev: 'ga', inUse: false });
    await qmp.close();
    const bareQmp = await QmpClient.connect({ path: bare.qmpSocket });
    assert.deepEqual(await findGuestAgentChannel(bareQmp), { kind: 'none' });
    await bareQmp.close();
    await assert.rejects(GuestAgentClient.connect(join(dir.path, 'nothing.sock')), { code: 'E_CONNECTION_FAILED' });
  } finally {
    await vm.stop();
    await bare.stop();
    await dir.remove();
  }
});
