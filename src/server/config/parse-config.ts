/**
 * Reads the configuration file's text into a validated {@link ServiceConfig}: YAML (the `yaml`
 * library, 1.2 core schema: `no` stays a string), then the JSON schema (config-schema.ts, the
 * one the API uses), then the cross-references (check-config.ts). Every problem is reported
 * with the line it is on (`file:line: key: message`); nothing is half-accepted.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { checkConfig } from './check-config.js';
import { ConfigInvalidError, keyOf, type ConfigProblem } from './config-problem.js';
import { ConfigSchema, type ServiceConfig } from './config-schema.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<ServiceConfig>(ConfigSchema);

/**
 * Parses and validates `text`, read from `file` (used in messages only).
 * @throws ConfigInvalidError (E_CONFIG_INVALID) listing every problem found.
 */
export function parseConfig(text: string, file: string): ServiceConfig {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => (offset === undefined ? 0 : lines.linePos(offset).line);
  if (document.errors.length > 0) {
    throw new ConfigInvalidError(file, document.errors.map((e) => ({ line: lineAt(e.pos[0]), key: '', message: e.message.split('\n')[0] ?? 'bad YAML' })));
  }
  const value: unknown = document.toJS() ?? {};
  if (!validate(value)) {
    throw new ConfigInvalidError(file, simplify(validate.errors ?? []).map((e) => schemaProblem(document, e, lineAt)));
  }
  const problems = checkConfig(value).map((p) => ({ line: lineAt(nodeAt(document, p.path)?.range?.[0]), key: keyOf(p.path), message: p.message }));
  if (problems.length > 0) throw new ConfigInvalidError(file, problems);
  return value;
}

/** Ajv reports every failing branch of a oneOf; keep the errors that say most. */
function simplify(errors: ErrorObject[]): ErrorObject[] {
  const oneOf = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const kept = errors.filter((e) => !oneOf.has(e.instancePath) || e.keyword === 'oneOf');
  const seen = new Set<string>();
  return kept.filter((e) => {
    const key = `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function schemaProblem(document: Document, error: ErrorObject, lineAt: (offset: number | undefined) => number): ConfigProblem {
  const path = error.instancePath.split('/').slice(1).map(unescape).map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p));
  const node = nodeAt(document, path);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      return { line: lineAt(keyNodeAt(node, extra)?.range?.[0] ?? node?.range?.[0]), key: keyOf([...path, extra]), message: 'unknown key (see docs/server-config.md)' };
    }
    case 'required':
      return { line: lineAt(node?.range?.[0]), key: keyOf([...path, String(params.missingProperty)]), message: 'is required' };
    case 'oneOf':
      return { line: lineAt(node?.range?.[0]), key: keyOf(path), message: 'must be exactly one of {images: [paths]}, {qmp: socket} or {libvirt: {uri, domain}}' };
    case 'pattern':
      return { line: lineAt(node?.range?.[0]), key: keyOf(path), message: `"${String(nodeValue(node))}" ${describePattern(String(params.pattern))}` };
    default:
      return { line: lineAt(node?.range?.[0]), key: keyOf(path), message: error.message ?? 'is invalid' };
  }
}

function describePattern(pattern: string): string {
  if (pattern.includes('smhdw')) return 'is not a duration such as 26h, 7d or 1d12h';
  if (pattern.includes('KMGT')) return 'is not a rate such as 20M or 500K (bytes per second)';
  if (pattern.includes('[0-5][0-9]')) return 'is not a time of day such as 22:00';
  if (pattern.includes('A-Za-z0-9')) return 'is not a name (letters, digits, ., _ and -, starting with a letter or digit)';
  return `does not match ${pattern}`;
}

function unescape(part: string): string {
  return part.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The node at a path of keys and indexes, or the deepest one that exists. */
function nodeAt(document: Document, path: readonly (string | number)[]): Node | undefined {
  let node: unknown = document.contents;
  let found = node as Node | undefined;
  for (const part of path) {
    if (isMap(node)) node = node.items.find((pair) => isPair(pair) && isScalar(pair.key) && String(pair.key.value) === String(part))?.value;
    else if (isSeq(node) && typeof part === 'number') node = node.items[part];
    else break;
    if (node === undefined || node === null) break;
    found = node as Node;
  }
  return found;
}

function keyNodeAt(node: Node | undefined, key: string): Node | undefined {
  if (!isMap(node)) return undefined;
  const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  return pair?.key as Node | undefined;
}

function nodeValue(node: Node | undefined): unknown {
  return isScalar(node) ? node.value : '';
}
