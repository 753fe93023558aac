// resource.Quantity as numbers: CPU in cores, memory and storage in bytes. The scheduler
// compares requests with allocatable through these; float precision is enough for that.

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?$/;

const SUFFIX: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['n', 1e-9],
  ['u', 1e-6],
  ['m', 1e-3],
  ['k', 1e3],
  ['M', 1e6],
  ['G', 1e9],
  ['T', 1e12],
  ['P', 1e15],
  ['E', 1e18],
  ['Ki', 2 ** 10],
  ['Mi', 2 ** 20],
  ['Gi', 2 ** 30],
  ['Ti', 2 ** 40],
  ['Pi', 2 ** 50],
  ['Ei', 2 ** 60],
]);

/** The value of a quantity, or undefined when it is not one. Accepts JSON numbers too. */
export function tryParseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  if (typeof q !== 'string' || q.length > 64) return undefined;
  const m = QUANTITY.exec(q);
  if (!m) return undefined;
  const base = Number(m[1]);
  const suffix = m[2] ?? '';
  const scale =
    suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')
      ? 10 ** Number(suffix.slice(1))
      : SUFFIX.get(suffix);
  if (scale === undefined) return undefined;
  const v = base * scale;
  return Number.isFinite(v) ? v : undefined;
}

/** '100m' -> 0.1, '1Gi' -> 1073741824, '1e3' -> 1000, '1k' -> 1000. Throws on a malformed quantity. */
export function parseQuantity(s: string): number {
  const v = tryParseQuantity(s);
  if (v === undefined)
    throw new Error(
      `quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': ${JSON.stringify(s)}`,
    );
  return v;
}
