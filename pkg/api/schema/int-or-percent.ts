// intstr.IntOrString values that mean "a count or a percentage of a total" (maxSurge,
// maxUnavailable, later minAvailable): parsing and scaling, as Kubernetes'
// GetScaledValueFromIntOrPercent does.

import { percent } from './formats.js';

export interface IntOrPercent {
  value: number;
  percent: boolean;
}

/** `3` -> {3, false}; `'25%'` -> {25, true}; anything else -> undefined. */
export function parseIntOrPercent(v: unknown): IntOrPercent | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { value: v, percent: false } : undefined;
  if (typeof v !== 'string') return undefined;
  const p = percent(v);
  return p === undefined ? undefined : { value: p, percent: true };
}

/** The count `v` stands for out of `total`: percentages round up or down as asked. */
export function scaledValue(v: number | string, total: number, roundUp: boolean): number {
  const parsed = parseIntOrPercent(v);
  if (parsed === undefined) throw new Error(`invalid value for IntOrString: ${JSON.stringify(v)}`);
  if (!parsed.percent) return parsed.value;
  const exact = (parsed.value * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}
