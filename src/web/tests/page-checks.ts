/**
 * What the console's end-to-end test checks on every page: axe-core's accessibility rules (no
 * serious or critical violation), no script error or Content-Security-Policy refusal in the
 * browser, and a full-page screenshot under test-output/screenshots/THEME/NAME.png for a
 * reviewer to look at.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { PROJECT_ROOT } from './coffer-process.js';

export const SCREENSHOT_DIR = join(PROJECT_ROOT, 'test-output', 'screenshots');

let axeSource: string | undefined;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[]; html: string; failureSummary?: string }>;
}

/** The serious and critical axe-core violations on the page, one line each. */
export async function seriousAxeViolations(page: Page): Promise<string[]> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, which the page's CSP does not govern: the CSP
  // stays on for the page itself (and its refusals are caught by watchForScriptErrors).
  // (Page code as strings: this file compiles without the DOM's types.)
  if (!(await page.evaluate("'axe' in window"))) await page.evaluate(axeSource);
  const violations: unknown = await page.evaluate("axe.run(document, { resultTypes: ['violations'] }).then((result) => result.violations)");
  return (violations as AxeViolation[])
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact ?? ''} ${v.id}: ${v.help} at ${v.nodes.map((n) => `${n.html.slice(0, 160)} (${(n.failureSummary ?? '').replace(/\s+/g, ' ').slice(0, 200)})`).join('; ')}`);
}

/** Saves a full-page screenshot; returns its path. */
export async function screenshot(page: Page, theme: string, name: string): Promise<string> {
  const dir = join(SCREENSHOT_DIR, theme);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Collects what went wrong in the page's scripts: uncaught errors and CSP refusals. */
export function watchForScriptErrors(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  return problems;
}
