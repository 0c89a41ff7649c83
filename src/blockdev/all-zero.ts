let zeros = new Uint8Array(0);

/** True when every byte of `data` is zero (a memcmp against a shared zero buffer). */
export function isAllZero(data: Uint8Array): boolean {
  if (zeros.length < data.length) zeros = new Uint8Array(data.length);
  return Buffer.compare(data, zeros.subarray(0, data.length)) === 0;
}
