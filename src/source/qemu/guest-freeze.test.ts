/**
 * The failure paths of {@link GuestFreeze} that a real qemu-ga cannot be made to take on
 * demand (guest-freeze.integ.test.ts runs the real one): an agent that freezes and then never
 * confirms the thaw. The peer is a scripted agent on a unix socket, speaking qemu-ga's wire
 * protocol (0xFF sentinel before the guest-sync-delimited reply, ids echoed).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { QmpClient } from '../../qmp/index.js';
import { GuestFreeze, type FreezeEvent } from './guest-freeze.js';

/**
 * An agent that answers sync and freeze and says `frozen` on status; on thaw it stays silent
 * (`silent`) or answers without thawing (`frozen`).
 */
async function stuckAgent(socketPath: string, thaw: 'silent' | 'frozen' = 'silent'): Promise<{ commands: string[]; close: () => Promise<void> }> {
  const commands: string[] = [];
  const server = net.createServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1').replace(/\xff/g, '');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const request = JSON.parse(line) as { execute: string; arguments?: { id?: number }; id: unknown };
        commands.push(request.execute);
        const reply = (value: unknown, sentinel = false): void => {
          socket.write(Buffer.concat([Buffer.from(sentinel ? [0xff] : []), Buffer.from(`${JSON.stringify({ return: value, id: request.id })}\n`)]));
        };
        if (request.execute === 'guest-sync-delimited') reply(request.arguments?.id, true);
        else if (request.execute === 'guest-fsfreeze-freeze') reply(2);
        else if (request.execute === 'guest-fsfreeze-status') reply('frozen');
        else if (request.execute === 'guest-fsfreeze-thaw' && thaw === 'frozen') reply(0);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { commands, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a thaw the agent never confirms is reported with what to do, and never throws', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-agent-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'qga.sock');
  const agent = await stuckAgent(socket);
  t.after(() => agent.close());
  const events: FreezeEvent[] = [];
  // The monitor is not used when the agent's socket is given.
  const freeze = await GuestFreeze.prepare({} as QmpClient, { agentSocket: socket, thawTimeoutMs: 200, onEvent: (e) => events.push(e) });
  await freeze.freeze();
  assert.equal(freeze.consistency.level, 'application');
  await freeze.thaw(); // resolves: a failed thaw is an event, not an exception
  await freeze.close();
  assert.deepEqual(events.map((e) => e.type), ['frozen', 'thaw-failed']);
  const failed = events[1] as Extract<FreezeEvent, { type: 'thaw-failed' }>;
  assert.match(failed.reason, new RegExp(`may still be frozen \\(send guest-fsfreeze-thaw to its agent at ${socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
  assert.match(failed.reason, /did not answer|within/);
  assert.deepEqual(agent.commands, ['guest-sync-delimited', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw'], 'one thaw sent, nothing after the agent stopped answering');
});

test('an agent that answers the thaw but stays frozen gets a second thaw, then the report', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-agent-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'qga.sock');
  const agent = await stuckAgent(socket, 'frozen');
  t.after(() => agent.close());
  const events: FreezeEvent[] = [];
  const freeze = await GuestFreeze.prepare({} as QmpClient, { agentSocket: socket, onEvent: (e) => events.push(e) });
  await freeze.freeze();
  await freeze.close();
  assert.deepEqual(events.map((e) => e.type), ['frozen', 'thaw-failed']);
  assert.match((events[1] as Extract<FreezeEvent, { type: 'thaw-failed' }>).reason, /still reports the filesystems frozen after two thaws/);
  assert.deepEqual(agent.commands, ['guest-sync-delimited', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw', 'guest-fsfreeze-status', 'guest-fsfreeze-thaw', 'guest-fsfreeze-status']);
});
