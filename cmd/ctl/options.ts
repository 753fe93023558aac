// Parsers for berthctl's flag values. Each throws commander's InvalidArgumentError, so a bad
// value is a usage error (exit 2) that names the flag, never a stack trace.
import { InvalidArgumentError } from 'commander';
import { parseEndpoint } from '../../pkg/client/options.js';
import type { TlsMaterial } from '../../pkg/rpc/tls.js';

export const DEFAULT_ENDPOINT = '127.0.0.1:2379';
export const ENDPOINTS_ENV = 'BERTH_ENDPOINTS';
export const DEFAULT_TIMEOUT = '5s';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml', 'wide', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What every command gets from the global flags, parsed. */
export interface GlobalOptions {
  /** gRPC targets ('host:port'), in the order given. */
  endpoints: string[];
  output: OutputFormat;
  /** Deadline of each request, and of waits such as transfer-leader's (ms). */
  timeoutMs: number;
  /** The namespace of namespaced objects: -n, else the context's, else 'default'. */
  namespace: string;
  /** -n was given (an object naming another namespace is then an error, as in kubectl). */
  namespaceExplicit: boolean;
  /** The config file (--config, $BERTH_CONFIG, ~/.berth/config) and the context chosen. */
  configPath: string;
  context?: string;
  /** Where the endpoints came from: the flag or environment beats the config file. */
  endpointsFromUser: boolean;
  /** --endpoints was on the command line (config set-context takes it as the context's). */
  endpointsFromFlag: boolean;
  /**
   * The context's CA, certificate and key: every connection uses them, whichever endpoints
   * (context, --endpoints, $BERTH_ENDPOINTS). Absent: the context has none, dial plain.
   */
  tls?: TlsMaterial;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as Go writes them ('500ms', '5s', '1m30s'); a bare number is seconds. Returns
 * milliseconds, at least 1.
 */
export function parseDuration(value: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return check(Number(v) * 1000, value);
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(v) ? v.match(/\d+(?:\.\d+)?(?:ms|s|m|h)/g) : null;
  if (!parts) throw new InvalidArgumentError(`"${value}" is not a duration (for example 500ms, 5s, 1m)`);
  let ms = 0;
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(p) as RegExpExecArray;
    ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  return check(ms, value);
}

function check(ms: number, value: string): number {
  if (!Number.isFinite(ms) || ms < 1)
    throw new InvalidArgumentError(`"${value}" must be a positive duration`);
  return Math.round(ms);
}

/** A comma-separated endpoint list ('a:2379,http://b:2379') as gRPC targets. */
export function parseEndpointList(value: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('needs at least one host:port');
  try {
    return items.map(parseEndpoint);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A whole number >= 0 (revisions, limits). */
export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`"${value}" is not a whole number >= 0`);
  }
  return n;
}
