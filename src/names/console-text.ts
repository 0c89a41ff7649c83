/**
 * A serial console's output as plain text: line ends as `\n`, terminal control sequences
 * removed (a CSI is ESC `[`, parameter bytes 0x30–0x3F — OVMF's `ESC[=3h` has `=` —,
 * intermediate bytes 0x20–0x2F and one final byte 0x40–0x7E: ECMA-48 §5.4), then every other
 * control character but tab and newline.
 */
export function plainConsoleText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n?/g, '\n').replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}
