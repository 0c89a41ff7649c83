import { CofferError } from '../../errors/index.js';

/**
 * A small, tolerant parser of LVM's config syntax, in which VG metadata is written:
 *
 *   vg0 {                        # a section: a name and a body in braces
 *     id = "Xg8pi0-GKwS-…"       # key = value; values: "strings" (\" and \\ escaped),
 *     extent_size = 8192         # integers and decimals,
 *     status = ["READ", "WRITE"] # or [arrays] of them, comma separated
 *     physical_volumes { pv0 { … } }
 *   }
 *   contents = "Text Format Volume Group"
 *
 * Comments run from `#` to the end of the line. Names are any run of characters other than
 * blanks and `{}[]=,"#`. Sections are Maps (keys such as `__proto__` are plain data). Bounded:
 * nesting depth {@link MAX_DEPTH}, {@link MAX_VALUES} values in all, strings within the text.
 * Throws E_FS_CORRUPT naming the line on anything else.
 */
export type ConfigValue = string | number | ConfigValue[] | ConfigSection;
export type ConfigSection = Map<string, ConfigValue>;

export const MAX_DEPTH = 32;
export const MAX_VALUES = 1_000_000;

export function parseLvmConfig(text: string): ConfigSection {
  return new Parser(text).document();
}

class Parser {
  private at = 0;
  private values = 0;

  constructor(private readonly text: string) {}

  document(): ConfigSection {
    const root = this.body(0);
    this.skipBlank();
    if (this.at < this.text.length) this.fail(`unexpected ${JSON.stringify(this.text[this.at])}`);
    return root;
  }

  private body(depth: number): ConfigSection {
    if (depth > MAX_DEPTH) this.fail(`sections nested deeper than ${MAX_DEPTH}`);
    const section: ConfigSection = new Map();
    for (;;) {
      this.skipBlank();
      const c = this.text[this.at];
      if (c === undefined || c === '}') return section;
      const name = this.name();
      this.skipBlank();
      const next = this.text[this.at];
      if (next === '{') {
        this.at++;
        section.set(name, this.body(depth + 1));
        this.skipBlank();
        if (this.text[this.at] !== '}') this.fail(`section ${name} is not closed`);
        this.at++;
      } else if (next === '=') {
        this.at++;
        section.set(name, this.value(depth + 1));
      } else {
        this.fail(`expected "=" or "{" after ${name}`);
      }
      this.count();
    }
  }

  private value(depth: number): ConfigValue {
    if (depth > MAX_DEPTH) this.fail(`arrays nested deeper than ${MAX_DEPTH}`);
    this.skipBlank();
    const c = this.text[this.at];
    if (c === '"') return this.string();
    if (c === '[') {
      this.at++;
      const items: ConfigValue[] = [];
      for (;;) {
        this.skipBlank();
        if (this.text[this.at] === ']') {
          this.at++;
          return items;
        }
        if (items.length > 0) {
          if (this.text[this.at] !== ',') this.fail('expected "," or "]" in an array');
          this.at++;
          this.skipBlank();
        }
        items.push(this.value(depth + 1));
        this.count();
      }
    }
    const match = /^[+-]?\d+(\.\d+)?/.exec(this.text.slice(this.at, this.at + 40));
    if (match === null) this.fail('expected a value');
    this.at += match[0].length;
    return Number(match[0]);
  }

  private string(): string {
    this.at++; // opening quote
    let out = '';
    for (;;) {
      const c = this.text[this.at++];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') return out;
      if (c === '\\') {
        const escaped = this.text[this.at++];
        if (escaped === undefined) this.fail('unterminated string');
        out += escaped;
      } else {
        out += c;
      }
    }
  }

  private name(): string {
    const start = this.at;
    while (this.at < this.text.length && !/[\s{}[\]=,"#]/.test(this.text[this.at]!)) this.at++;
    if (this.at === start) this.fail(`expected a name, found ${JSON.stringify(this.text[this.at])}`);
    return this.text.slice(start, this.at);
  }

  private skipBlank(): void {
    for (;;) {
      const c = this.text[this.at];
      if (c === '#') {
        const end = this.text.indexOf('\n', this.at);
        this.at = end < 0 ? this.text.length : end + 1;
      } else if (c !== undefined && (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\0')) {
        this.at++;
      } else {
        return;
      }
    }
  }

  private count(): void {
    if (++this.values > MAX_VALUES) this.fail(`more than ${MAX_VALUES} values`);
  }

  private fail(what: string): never {
    const line = this.text.slice(0, this.at).split('\n').length;
    throw new CofferError('E_FS_CORRUPT', `lvm: metadata text, line ${line}: ${what}`);
  }
}
