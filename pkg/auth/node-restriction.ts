// Kubernetes' NodeRestriction admission for Berth: what a node's certificate
// (`system:node:<name>`) may write through the Objects API. A node agent needs its own Node
// object, its own heartbeat Lease, the status of the pods bound to it, and Events; nothing
// else, so a stolen node certificate cannot take over other nodes' pods or the cluster's
// workloads. Pure: the caller passes the stored object (pods are judged by the binding
// that is stored, never by what the request claims).
import type { ApiObject } from '../api/types.js';

/** The namespace of nodes' heartbeat Leases (as kube-node-lease). */
export const NODE_LEASE_NAMESPACE = 'berth-node-lease';

export const WriteVerb = {
  Create: 'create',
  Update: 'update',
  UpdateStatus: 'updateStatus',
  Apply: 'apply',
  Delete: 'delete',
} as const;
export type WriteVerb = (typeof WriteVerb)[keyof typeof WriteVerb];

/** One object write as NodeRestriction sees it. */
export interface NodeWrite {
  verb: WriteVerb;
  /** The object's kind (`Pod`), or the name the request used when it names no known kind. */
  kind: string;
  /** undefined for cluster-scoped kinds. */
  namespace: string | undefined;
  /** '' when the request names none (generateName). */
  name: string;
  /** The object as stored now, for the kinds that needsStoredObject names; else undefined. */
  stored: ApiObject | undefined;
}

export type NodeWriteDecision =
  | { allowed: true }
  /** `notFound`: the object the rule is judged on does not exist (answer NOT_FOUND). */
  | { allowed: false; notFound: boolean; message: string };

const OK: NodeWriteDecision = { allowed: true };

/** Kinds judged on the stored object: the caller reads it before asking. */
export function needsStoredObject(kind: string): boolean {
  return kind === 'Pod';
}

/** Decides whether node `nodeName` may make `write`. */
export function admitNodeWrite(nodeName: string, write: NodeWrite): NodeWriteDecision {
  const node = JSON.stringify(nodeName);
  const what = describe(write);
  const refuse = (why: string): NodeWriteDecision => ({
    allowed: false,
    notFound: false,
    message: `node ${node} may not ${write.verb} ${what}: ${why}`,
  });
  switch (write.kind) {
    case 'Node':
      // Its own Node only, in every way (Kubernetes lets a node delete its own Node too).
      return write.name === nodeName ? OK : refuse('a node may modify only its own Node object');
    case 'Lease':
      if (write.namespace === NODE_LEASE_NAMESPACE && write.name === nodeName) return OK;
      return refuse(`a node may modify only its own Lease, ${NODE_LEASE_NAMESPACE}/${nodeName}`);
    case 'Pod':
      return admitPod(nodeName, write, refuse);
    case 'Event':
      // Agents record events about their pods; Kubernetes leaves events to RBAC.
      if (
        write.verb === WriteVerb.Create ||
        write.verb === WriteVerb.Update ||
        write.verb === WriteVerb.Apply
      )
        return OK;
      return refuse('a node may only create or update events');
    default:
      return refuse(`a node may modify only its Node, its Lease, its pods' status and events`);
  }
}

function admitPod(
  nodeName: string,
  write: NodeWrite,
  refuse: (why: string) => NodeWriteDecision,
): NodeWriteDecision {
  if (write.verb !== WriteVerb.UpdateStatus && write.verb !== WriteVerb.Delete) {
    // Kubernetes allows nodes only mirror pods (static pods); Berth has none.
    return refuse('a node may only update the status of, or delete, pods bound to it');
  }
  const ref = `pod ${write.namespace ?? ''}/${write.name}`;
  if (!write.stored) {
    return { allowed: false, notFound: true, message: `pods ${JSON.stringify(write.name)} not found` };
  }
  const bound = write.stored.spec?.nodeName;
  if (bound === nodeName) return OK;
  const node = JSON.stringify(nodeName);
  return {
    allowed: false,
    notFound: false,
    message:
      typeof bound === 'string' && bound !== ''
        ? `node ${node} may not modify ${ref} bound to node ${JSON.stringify(bound)}`
        : `node ${node} may not modify ${ref}: it is not bound to any node`,
  };
}

/** `pod default/web-1`, `node n1`, `lease berth-node-lease/n1`. */
function describe(w: NodeWrite): string {
  const name = w.name === '' ? '(generated name)' : w.name;
  return `${w.kind.toLowerCase()} ${w.namespace ? `${w.namespace}/` : ''}${name}`;
}
