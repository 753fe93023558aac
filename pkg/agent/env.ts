// A container's environment as the kubelet builds it (makeEnvironmentVariables): the
// namespace's Services (service-env.ts) first, then envFrom sources, then env entries in
// order, later names replacing earlier ones; `value` expands $(VAR) references to variables
// defined before it. Errors name the missing ConfigMap, Secret or key; the agent reports
// them as CreateContainerConfigError.

import type { ApiObject } from '../api/types.js';
import type { Container, Pod } from './container-spec.js';
import { serviceEnv } from './service-env.js';

/** Where ConfigMap and Secret data comes from (the agent's watch cache). Undefined: no such object. */
export interface ConfigLookups {
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Values decoded from base64. */
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** The namespace's Services, for <NAME>_SERVICE_HOST and the rest (service-env.ts). */
  services?(namespace: string): Promise<ApiObject[]>;
}

export interface ResolvedEnv {
  /** NAME=value, in first-definition order. */
  env: string[];
  errors: string[];
}

// The kubelet's check for keys coming from envFrom (a C identifier plus '-' and '.').
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export function isEnvVarName(s: string): boolean {
  return ENV_NAME.test(s);
}

/**
 * Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): `$$` is a literal `$`,
 * `$(NAME)` is replaced when NAME is known and kept as written when not, and an unclosed
 * `$(` or a `$` before anything else stays as is.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let i = 0; i < input.length; i++) {
    if (input[i] !== '$' || i + 1 >= input.length) continue;
    out += input.slice(checkpoint, i);
    const rest = input.slice(i + 1);
    let advance = 1;
    if (rest[0] === '$') out += '$';
    else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close < 0) out += '$(';
      else {
        const name = rest.slice(1, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close + 1;
      }
    } else out += `$${rest[0]}`;
    i += advance;
    checkpoint = i + 1;
  }
  return out + input.slice(checkpoint);
}

const LABEL_PATH = /^metadata\.(labels|annotations)\['([^']+)'\]$/;

/**
 * A fieldRef's value. status.podIP/hostIP are read from pod.status: the caller fills them in
 * with what the agent knows at creation time (the sandbox's address, the node's).
 */
export function podFieldValue(pod: Pod, fieldPath: string): string | undefined {
  const status = pod.status ?? {};
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const ips = (list: unknown, single: unknown) =>
    Array.isArray(list) ? list.map((x) => str((x as { ip?: unknown }).ip)).join(',') : str(single);
  const m = LABEL_PATH.exec(fieldPath);
  if (m) {
    const map = m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[m[2] ?? ''] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name ?? '';
    case 'metadata.namespace':
      return pod.metadata.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? '';
    case 'status.podIP':
      return str(status.podIP);
    case 'status.hostIP':
      return str(status.hostIP);
    case 'status.podIPs':
      return ips(status.podIPs, status.podIP);
    case 'status.hostIPs':
      return ips(status.hostIPs, status.hostIP);
    default:
      return undefined;
  }
}

type Kind = 'configmap' | 'secret';

export async function resolveEnv(
  container: Container,
  pod: Pod,
  lookups: ConfigLookups,
): Promise<ResolvedEnv> {
  const ns = pod.metadata.namespace ?? 'default';
  const vars = new Map<string, string>();
  const errors: string[] = [];
  // Services' variables come first: the container's own may override and refer to them.
  if (pod.spec.enableServiceLinks !== false && lookups.services) {
    for (const [k, v] of serviceEnv(await lookups.services(ns))) vars.set(k, v);
  }
  // One read per object, as the kubelet caches them for the duration of one call.
  const cache = new Map<string, Promise<Record<string, string> | undefined>>();
  const get = (kind: Kind, name: string) => {
    const key = `${kind}/${name}`;
    let p = cache.get(key);
    if (!p) {
      p = kind === 'configmap' ? lookups.configMap(ns, name) : lookups.secret(ns, name);
      cache.set(key, p);
    }
    return p;
  };

  for (const src of container.envFrom ?? []) {
    const ref = src.configMapRef ?? src.secretRef;
    if (!ref) continue;
    const kind: Kind = src.configMapRef ? 'configmap' : 'secret';
    const data = await get(kind, ref.name);
    if (!data) {
      if (!ref.optional) errors.push(`${kind} "${ref.name}" not found`);
      continue;
    }
    for (const [k, v] of Object.entries(data)) {
      const name = (src.prefix ?? '') + k;
      // Invalid names are skipped (the kubelet records an InvalidEnvironmentVariableNames event).
      if (isEnvVarName(name)) vars.set(name, v);
    }
  }

  for (const e of container.env ?? []) {
    const from = e.valueFrom;
    if (!from) {
      vars.set(
        e.name,
        expand(e.value ?? '', (n) => vars.get(n)),
      );
      continue;
    }
    if (from.fieldRef) {
      const v = podFieldValue(pod, from.fieldRef.fieldPath);
      if (v === undefined) errors.push(`unsupported fieldPath "${from.fieldRef.fieldPath}"`);
      else vars.set(e.name, v);
      continue;
    }
    const ref = from.configMapKeyRef ?? from.secretKeyRef;
    if (!ref) continue;
    const kind: Kind = from.configMapKeyRef ? 'configmap' : 'secret';
    const data = await get(kind, ref.name);
    if (!data) {
      if (!ref.optional) errors.push(`${kind} "${ref.name}" not found`);
      continue;
    }
    const v = data[ref.key];
    if (v === undefined) {
      if (!ref.optional) errors.push(`key "${ref.key}" not found in ${kind} "${ref.name}"`);
      continue;
    }
    vars.set(e.name, v);
  }

  return { env: [...vars].map(([k, v]) => `${k}=${v}`), errors };
}
