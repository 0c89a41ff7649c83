/**
 * The file-backup part's table (files.ts): per step, each tool's wall time, CPU time, peak
 * RSS and repository size after the step, and Coffer's wall time over the faster peer's.
 *
 * @module
 */
import { FILE_STEPS, type FilesResult } from './files.js';

const MiB = 1024 * 1024;

function pad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** The table printed at the end of the run. */
export function renderFiles(files: FilesResult): string {
  const t = files.tree;
  const c = files.changes;
  const tools = Object.keys(files.tools);
  const lines = [
    `files: a tree of ${t.smallFiles + t.largeFiles} files, ${((t.smallBytes + t.largeBytes) / MiB).toFixed(0)} MiB (${t.smallFiles} small from /usr, ${t.largeFiles} large); ` +
      `changes: ${c.overwritten} overwritten, ${c.inserted} inserted into, ${c.appended} appended large files, ${c.smallEdited} small edited, ${c.smallAdded} added, ${c.smallDeleted} deleted`,
    `${'step'.padEnd(12)}| ${tools.map((tool) => `${tool.padEnd(6)} wall s  cpu s RSS M  repo M`).join(' | ')} | coffer/best peer (wall)`,
  ];
  for (const step of FILE_STEPS) {
    const cells = tools.map((tool) => {
      const r = files.results.find((x) => x.tool === tool && x.step === step);
      if (r === undefined) return pad('-', 35);
      if (r.error !== undefined) return pad('FAILED', 35);
      return pad(r.wallS.toFixed(1), 13) + pad(r.cpuS.toFixed(1), 7) + pad((r.maxRssKiB / 1024).toFixed(0), 6) + pad((r.repo.apparent / MiB).toFixed(1), 9);
    });
    const wall = (tool: string) => files.results.find((x) => x.tool === tool && x.step === step && x.error === undefined)?.wallS;
    const peers = ['restic', 'borg'].map(wall).filter((v): v is number => v !== undefined);
    const coffer = wall('coffer');
    const ratio = coffer !== undefined && peers.length > 0 ? (coffer / Math.min(...peers)).toFixed(2) : '-';
    lines.push(`${step.padEnd(12)}|${cells.join(' |')} | ${pad(ratio, 6)}`);
  }
  return lines.join('\n');
}
