import type { Volume } from './volume.js';

type Settled = Omit<Volume, 'warnings'>;

/** A volume while it is being assembled: warnings and the PV mark can still be added. */
export type DraftVolume = { -readonly [K in keyof Settled]: Settled[K] } & { warnings: string[] };

/** The finished volume: `warnings` only when there are some. */
export function finish(draft: DraftVolume): Volume {
  const { warnings, ...rest } = draft;
  return warnings.length > 0 ? { ...rest, warnings: [...warnings] } : rest;
}
