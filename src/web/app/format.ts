/** How figures read in the console: bytes in binary units, ratios, ages, times in a time zone. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; one decimal below 100, none above. */
export function formatBytes(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null || !Number.isFinite(bytes)) return '–';
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // Whole bytes: an average (bytes stored per day) read "424.14285714285717 B".
  return `${unit === 0 ? Math.round(value) : value < 100 ? value.toFixed(1) : value.toFixed(0)} ${UNITS[unit] as string}`;
}

/** 2.345 → "2.3×". */
export function formatRatio(ratio: number | undefined | null): string {
  return ratio === undefined || ratio === null || !Number.isFinite(ratio) ? '–' : `${ratio.toFixed(ratio >= 10 ? 0 : 1)}×`;
}

/** 90_061_000 → "1 d 1 h". */
export function formatAge(ms: number | undefined | null): string {
  if (ms === undefined || ms === null) return 'never';
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** An ISO time shown in a time zone (the browser's by default): "Mon 24 Nov 2026, 22:00". */
export function formatTime(iso: string | null | undefined, timeZone?: string): string {
  if (iso === null || iso === undefined) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', ...(timeZone === undefined ? {} : { timeZone }) }).format(date);
}

/** YYYY-MM-DD of a time in the browser's time zone (the calendar's day key). */
export function dayKey(date: Date): string {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
}
