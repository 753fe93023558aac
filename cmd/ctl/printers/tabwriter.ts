// A port of Go's text/tabwriter (align left, space padding, no flags): kubectl formats both
// `get` tables and `describe` text through it, so alignment quirks match kubectl's exactly.

/** Go's tabwriter settings: kubectl get uses minwidth 6, padding 3; describe minwidth 0, padding 2. */
export interface TabWriterOptions {
  minwidth: number;
  padding: number;
}

export const GET_TABS: TabWriterOptions = { minwidth: 6, padding: 3 };
export const DESCRIBE_TABS: TabWriterOptions = { minwidth: 0, padding: 2 };

/** Go counts runes, not UTF-16 units. */
export function runeWidth(s: string): number {
  return [...s].length;
}

/**
 * Aligns tab-separated text as Go's tabwriter does between two flushes: a column block is a
 * run of consecutive lines that have a tab-terminated cell in that column; a line's last cell
 * is never padded. `text` is split on '\n'; a trailing newline ends the last line.
 */
export function tabwrite(text: string, opts: TabWriterOptions): string {
  if (text === '') return '';
  const rawLines = text.split('\n');
  const endsWithNewline = rawLines[rawLines.length - 1] === '';
  if (endsWithNewline) rawLines.pop();
  const lines = rawLines.map((l) => l.split('\t'));
  const lineWidths: number[][] = lines.map(() => []);
  const cellCount = (i: number): number => lines[i]?.length ?? 0;
  const cellWidth = (i: number, c: number): number => runeWidth(lines[i]?.[c] ?? '');

  const format = (widths: number[], line0: number, line1: number): void => {
    const column = widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= cellCount(t) - 1) continue;
      for (let i = line0; i < t; i++) lineWidths[i] = widths;
      line0 = t;
      let width = opts.minwidth;
      for (; t < line1; t++) {
        if (column >= cellCount(t) - 1) break;
        width = Math.max(width, cellWidth(t, column) + opts.padding);
      }
      format([...widths, width], line0, t);
      line0 = t;
    }
    for (let i = line0; i < line1; i++) lineWidths[i] = widths;
  };
  format([], 0, lines.length);

  const out = lines.map((cells, i) => {
    const widths = lineWidths[i] ?? [];
    return cells
      .map((c, j) => {
        const w = widths[j];
        return w === undefined ? c : c + ' '.repeat(Math.max(0, w - runeWidth(c)));
      })
      .join('');
  });
  return out.join('\n') + (endsWithNewline ? '\n' : '');
}

/** kubectl get's table: cells joined by tabs, one line per row, no trailing newline. */
export function renderRows(rows: readonly (readonly string[])[]): string {
  return tabwrite(rows.map((r) => r.join('\t')).join('\n'), GET_TABS);
}

/**
 * Watch output (-w): kubectl's tabwriter remembers column widths across flushes, so later rows
 * line up with earlier ones and columns only grow. One aligner per watch stream.
 */
export function createRowAligner(): (cells: readonly string[]) => string {
  const widths: number[] = [];
  return (cells) =>
    cells
      .map((c, j) => {
        if (j === cells.length - 1) return c;
        const w = Math.max(widths[j] ?? 0, runeWidth(c) + GET_TABS.padding, GET_TABS.minwidth);
        widths[j] = w;
        return c + ' '.repeat(w - runeWidth(c));
      })
      .join('');
}

/** kubectl's PrefixWriter over a tabwriter: two spaces per level, flush starts a new alignment run. */
export class DescribeWriter {
  private done = '';
  private pending = '';

  write(level: number, text: string): void {
    this.pending += '  '.repeat(level) + text;
  }

  /** Appends to the current line without indenting (kubectl's WriteLine after a partial Write). */
  line(text: string): void {
    this.pending += `${text}\n`;
  }

  flush(): void {
    this.done += tabwrite(this.pending, DESCRIBE_TABS);
    this.pending = '';
  }

  /** The text without its final newline (callers print results as lines). */
  toString(): string {
    this.flush();
    return this.done.replace(/\n$/, '');
  }
}
