/**
 * walkChanges on trees in memory: the merge of two sorted listings, and what a damaged
 * filesystem does to it (a folder that contains itself, a folder that cannot be listed):
 * reported as problems, the walk goes on, never a hang.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../errors/index.js';
import { walkChanges, type DiffProblem, type DiffSide, type PathChange } from './change-walk.js';

interface Node {
  id: string;
  type: string;
  data?: string;
  children?: () => Record<string, Node>;
}

const side: DiffSide<Node> = {
  list: async (directory) => {
    const children = directory.children?.();
    if (children === undefined) throw new CofferError('E_FS_CORRUPT', `${directory.id}: unreadable folder`);
    return Object.keys(children).sort().map((name) => ({ name, node: children[name] as Node }));
  },
  type: (node) => node.type,
  size: (node) => node.data?.length,
  id: (node) => node.id,
};
const comparison = {
  sameSubtree: () => false,
  compare: async (a: Node, b: Node) => (a.data !== b.data ? ('M' as const) : undefined),
};
const file = (id: string, data: string): Node => ({ id, type: 'file', data });
const dir = (id: string, children: () => Record<string, Node>): Node => ({ id, type: 'directory', children });

async function changes(a: Node, b: Node): Promise<{ changes: string[]; problems: DiffProblem[] }> {
  const out: string[] = [];
  const problems: DiffProblem[] = [];
  await walkChanges({ a: side, b: side }, { a, b }, comparison, { change: (c: PathChange) => void out.push(`${c.change} ${c.path}`), problem: (p) => problems.push(p) });
  return { changes: out, problems };
}

test('listings merged by name: added, removed, modified, type changed with what is below', async () => {
  const a = dir('/', () => ({ a: file('a', '1'), b: file('b', '1'), d: dir('d', () => ({ x: file('x', '') })), f: file('f', '') }));
  const b = dir('/', () => ({ a: file('a', '2'), c: file('c', '1'), d: file('d', ''), f: file('f', '') }));
  assert.deepEqual((await changes(a, b)).changes, ['M /a', '- /b', '+ /c', 'T /d', '- /d/x']);
});

test('a folder that contains itself, or cannot be listed, is a problem; the walk goes on', async () => {
  const loop: Node = dir('loop', () => ({ again: loop, z: file('z', '') }));
  const a = dir('/', () => ({ bad: { id: 'bad', type: 'directory' }, loop, ok: file('ok', '1') }));
  const b = dir('/', () => ({ bad: { id: 'bad', type: 'directory' }, loop, ok: file('ok', '2') }));
  const result = await changes(a, b);
  assert.deepEqual(result.changes, ['M /ok']);
  assert.deepEqual(result.problems.map((p) => [p.path, p.code]), [['/bad', 'E_FS_CORRUPT'], ['/loop/again', 'E_FS_CORRUPT']]);
  assert.match(result.problems[1]?.message ?? '', /directory loop/);
  // Only on one side: everything below is listed as added, the loop still stopped.
  const added = await changes(dir('/', () => ({})), dir('/', () => ({ loop })));
  assert.deepEqual(added.changes, ['+ /loop', '+ /loop/again', '+ /loop/z']);
  assert.equal(added.problems.length, 1);
});
