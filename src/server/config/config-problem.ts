/**
 * What is wrong with a configuration: one problem per place, each as
 * `file:line: key: message` (the key a dotted path such as `jobs[0].schedule`), all of them
 * carried by one E_CONFIG_INVALID error so the administrator fixes the file in one go.
 */
import { CofferError } from '../../errors/index.js';

export interface ConfigProblem {
  /** 1-based line in the file (0 when the text has no position for it). */
  line: number;
  /** A dotted path to the key, e.g. `jobs[0].schedule`; empty for the whole document. */
  key: string;
  message: string;
}

/** `file:line: key: message`. */
export function formatProblem(file: string, problem: ConfigProblem): string {
  return `${file}:${problem.line}: ${problem.key === '' ? '(document)' : problem.key}: ${problem.message}`;
}

/** The error for an invalid configuration; `problems` lists every one found. */
export class ConfigInvalidError extends CofferError {
  readonly problems: readonly ConfigProblem[];
  readonly file: string;

  constructor(file: string, problems: readonly ConfigProblem[]) {
    // One line for the CLI: the problems joined; the API returns them as a list.
    super('E_CONFIG_INVALID', problems.map((p) => formatProblem(file, p)).join('; '), { subject: { path: file } });
    this.problems = problems;
    this.file = file;
  }
}

/** `jobs[0].schedule` from `['jobs', 0, 'schedule']`. */
export function keyOf(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}
