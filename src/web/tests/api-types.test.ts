/**
 * The console's API types (src/web/api/schema.d.ts) are what the server's OpenAPI document
 * says today: the generator, run in check mode against the compiled server, finds nothing to
 * change. Fails when a route's schema changed without `npm run build:web` (and a commit).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from './coffer-process.js';

test('src/web/api/schema.d.ts matches the server\'s OpenAPI document', () => {
  const run = spawnSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'generate-api-types.mjs'), '--check'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /up to date/);
});
