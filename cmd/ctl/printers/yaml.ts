// -o yaml / -o json / -o name as kubectl prints them.
import { stringify } from 'yaml';
import type { KindInfo } from '../../../pkg/api/kinds.js';
import type { ApiList, ApiObject } from '../../../pkg/api/types.js';

/**
 * YAML as kubectl prints it: block style, sequences not indented under their key, no line
 * wrapping, and YAML 1.1 quoting (go-yaml's), so strings such as "yes", "on", "y" or a
 * timestamp stay quoted strings for readers of either YAML version. Keys keep the object's order.
 */
export function toYaml(value: unknown): string {
  return stringify(value, {
    version: '1.1',
    lineWidth: 0,
    minContentWidth: 0,
    indentSeq: false,
    // kubectl never writes anchors, even when one object appears twice.
    aliasDuplicateObjects: false,
  });
}

/** Go's json.MarshalIndent escapes HTML characters; kubectl's JSON shows them as \u003c etc. */
export function toKubectlJson(value: unknown): string {
  return JSON.stringify(value, null, 4).replace(/[<>&\u2028\u2029]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** kubectl wraps several objects in a v1 List; a single object prints on its own. */
export function asList(objects: ApiObject[]): ApiList {
  return { apiVersion: 'v1', items: objects, kind: 'List', metadata: { resourceVersion: '' } } as ApiList;
}

/** 'deployment.apps/web': kubectl's -o name. */
export function objectName(kind: KindInfo, o: ApiObject): string {
  const prefix = kind.group ? `${kind.singular}.${kind.group}` : kind.singular;
  return `${prefix}/${o.metadata.name ?? ''}`;
}
