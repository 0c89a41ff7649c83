import { describe, expect, it } from 'vitest';
import { formatBytes } from './format';

describe('formatBytes', () => {
  it('shows whole bytes, then one decimal below 100 of a unit', () => {
    const cases: Array<[number | undefined, string]> = [
      [0, '0 B'],
      [424.14285714285717, '424 B'],
      [1023.6, '1024 B'],
      [1536, '1.5 KiB'],
      [200 * 1024 * 1024, '200 MiB'],
      [undefined, '–'],
    ];
    for (const [bytes, text] of cases) expect(formatBytes(bytes)).toBe(text);
  });
});
