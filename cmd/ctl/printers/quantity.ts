// Kubernetes resource quantities ('100m', '128Mi', '1G'), enough to add requests up for
// describe node. Values are in base units (cores, bytes); `unit` keeps the suffix family.

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** `unit` is 'binary' or 'decimal' (the suffix family the quantity was written in). */
export function parseQuantity(s: string): { value: number; unit: string } | undefined {
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (Number.isNaN(n)) return undefined;
  const b = BINARY[suffix];
  if (b !== undefined) return { value: n * b, unit: 'binary' };
  const d = DECIMAL[suffix];
  if (d !== undefined) return { value: n * d, unit: 'decimal' };
  return undefined;
}

/** Canonical form: the largest suffix of the family that divides the value, millis for fractions. */
export function formatQuantity(value: number, unit: string): string {
  if (value === 0) return '0';
  if (unit === 'binary') {
    for (const s of ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki']) {
      const f = BINARY[s] ?? 1;
      if (value % f === 0) return `${value / f}${s}`;
    }
  }
  const milli = Math.round(value * 1000);
  if (milli % 1000 !== 0) return `${milli}m`;
  for (const s of ['E', 'P', 'T', 'G', 'M', 'k']) {
    const f = DECIMAL[s] ?? 1;
    if (value % f === 0) return `${value / f}${s}`;
  }
  return String(value);
}
