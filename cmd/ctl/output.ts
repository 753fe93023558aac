// Output: kubectl-style plain tables (cli-table3 without borders) for people, JSON for scripts.
// Only pure functions here; commands decide what to print and write it through CtlIO.
import Table from 'cli-table3';

const PLAIN: Partial<Record<Table.CharName, string>> = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '   ',
};

/** Makes a cell one line: control characters (newlines in values) shown escaped, as JSON would. */
export function cell(v: string | number | boolean | undefined | null): string {
  if (v === undefined || v === null || v === '') return '-';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
  return String(v).replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** A header row and aligned columns separated by three spaces, no borders, no trailing spaces. */
export function renderTable(
  head: string[],
  rows: (string | number | boolean | undefined | null)[][],
): string {
  const t = new Table({
    head,
    chars: PLAIN,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  for (const r of rows) t.push(r.map(cell));
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/** Indented JSON: one value per command (watch prints one compact object per line instead). */
export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
