// Kubernetes' name and value formats (apimachinery/pkg/util/validation), each returning the
// problem with a string, or undefined when it is fine. Messages follow Kubernetes' wording.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function dnsLabel(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!DNS1123_LABEL.test(s))
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
  return undefined;
}

export function dnsSubdomain(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(s))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

export function dns1035Label(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!DNS1035_LABEL.test(s))
    return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
  return undefined;
}

/** A label or annotation key: an optional DNS subdomain prefix and '/', then a name of <= 63. */
export function qualifiedName(s: string): string | undefined {
  const parts = s.split('/');
  let name = s;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) return 'prefix part must be non-empty';
    const bad = dnsSubdomain(prefix);
    if (bad) return `prefix part ${bad}`;
  } else if (parts.length > 2) {
    return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

export function labelValue(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(s))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** A port name: <= 15 lowercase alphanumerics or '-', at least one letter, no '--'. */
export function ianaSvcName(s: string): string | undefined {
  if (s.length > 15) return 'must be no more than 15 characters';
  if (!IANA_SVC_NAME.test(s))
    return 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), and must not start or end with a hyphen';
  if (s.includes('--')) return 'must not contain consecutive hyphens';
  if (!/[a-z]/.test(s)) return 'must contain at least one letter (a-z)';
  return undefined;
}

/** A ConfigMap or Secret key. */
export function configKey(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!CONFIG_KEY.test(s))
    return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
  if (s === '.' || s === '..' || s.startsWith('..')) return "must not be '.' or '..' or start with '..'";
  return undefined;
}

export function base64(s: string): string | undefined {
  return BASE64.test(s) ? undefined : 'must be base64-encoded data';
}

/** RFC 3339 time (metav1.Time and metav1.MicroTime), checked to be a real date. */
export function rfc3339(s: string): string | undefined {
  if (!RFC3339.test(s) || !Number.isFinite(Date.parse(s)))
    return 'must be an RFC 3339 time, e.g. "2026-01-02T15:04:05Z"';
  return undefined;
}

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  const last = groups[groups.length - 1];
  const v4 = last?.includes('.') === true;
  if (v4 && !isIPv4(last ?? '')) return false;
  const hex = v4 ? groups.slice(0, -1) : groups;
  if (!hex.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const count = hex.length + (v4 ? 2 : 0);
  return halves.length === 2 ? count < 8 : count === 8;
}

export function ipAddress(s: string): string | undefined {
  return isIPv4(s) || isIPv6(s) ? undefined : 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';
}

/** A relative path with no '..' element (volume item paths, subPath). */
export function relativePath(s: string): string | undefined {
  if (s.startsWith('/')) return 'must be a relative path';
  if (s.split('/').includes('..')) return "must not contain '..'";
  return undefined;
}

/** A percentage string like '25%'. */
export function percent(s: string): number | undefined {
  const m = /^(\d{1,9})%$/.exec(s);
  return m ? Number(m[1]) : undefined;
}
