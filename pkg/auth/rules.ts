// Who may call what on the client port. Pure: a table of every gRPC method the port serves,
// each classed read, write or special, and `authorize`, which decides for a caller, a method
// and (for special methods) the decoded request. A method missing from the table is refused,
// so a new RPC stays closed until someone decides who may call it (a unit test checks the
// table against the protos).
//
//   insecure, admin: everything    readonly: reads, renewing its own certificate
//   unknown: nothing
//   node: reads; the Pods service; Objects writes (NodeRestriction, checked by the handler
//         on the stored object); Cluster MemberAdd of a learner (joining); no other write.
import type { Caller } from './identity.js';

export const MethodClass = { Read: 'read', Write: 'write', Special: 'special' } as const;
export type MethodClass = (typeof MethodClass)[keyof typeof MethodClass];

/**
 * What a node identity may do with a method that is not a read: `deny`, `allow` (the Pods
 * service: nodes forward logs, exec and top to each other), `admission` (allowed here, then
 * decided per object by node-restriction.ts in the Objects handler), or a check of the request.
 */
export type NodeAccess = 'deny' | 'allow' | 'admission' | ((request: unknown) => string | undefined);

export interface MethodRule {
  class: MethodClass;
  /** Special methods: whether this request only reads (then it is treated as a read). */
  readsOnly?: (request: unknown) => boolean;
  /** Beyond reads; default `deny`. */
  node?: NodeAccess;
  /** Acts only on the caller's own identity (certificate renewal): every identity may call. */
  self?: boolean;
}

/** The services the client port serves (cmd/node/node.ts), by full proto name. */
export const CLIENT_PORT_SERVICES = [
  'etcdserverpb.KV',
  'etcdserverpb.Watch',
  'etcdserverpb.Lease',
  'etcdserverpb.Cluster',
  'etcdserverpb.Maintenance',
  'berth.api.v1.Objects',
  'berth.api.v1.Pods',
  'berth.security.v1.Certificates',
  'berth.security.v1.Membership',
] as const;

/** Services served elsewhere: the join port (no client certificate yet) and the Raft peer port. */
export const OTHER_PORT_SERVICES = ['berth.security.v1.Join', 'berth.raft.v1.RaftTransport'] as const;

const read: MethodRule = { class: MethodClass.Read };
const write: MethodRule = { class: MethodClass.Write };
const objectWrite: MethodRule = { class: MethodClass.Special, node: 'admission' };

/** Every method of CLIENT_PORT_SERVICES, by gRPC path. */
export const METHOD_RULES: Readonly<Record<string, MethodRule>> = {
  '/etcdserverpb.KV/Range': read,
  '/etcdserverpb.KV/Put': write,
  '/etcdserverpb.KV/DeleteRange': write,
  '/etcdserverpb.KV/Txn': { class: MethodClass.Special, readsOnly: (r) => !txnWrites(r) },
  '/etcdserverpb.KV/Compact': write,
  '/etcdserverpb.Watch/Watch': read,
  '/etcdserverpb.Lease/LeaseGrant': write,
  '/etcdserverpb.Lease/LeaseRevoke': write,
  '/etcdserverpb.Lease/LeaseKeepAlive': write,
  '/etcdserverpb.Lease/LeaseTimeToLive': read,
  '/etcdserverpb.Lease/LeaseLeases': read,
  // A joining node adds itself as a learner (cmd/node/node.ts); MemberAdd names no member,
  // only peer URLs, so "only itself" cannot be checked: learners only, which cannot vote.
  '/etcdserverpb.Cluster/MemberAdd': { class: MethodClass.Special, node: learnerOnly },
  '/etcdserverpb.Cluster/MemberRemove': write,
  '/etcdserverpb.Cluster/MemberUpdate': write,
  '/etcdserverpb.Cluster/MemberList': read,
  // Nodes promote themselves through Raft (store.raft.promote), not over this port.
  '/etcdserverpb.Cluster/MemberPromote': write,
  '/etcdserverpb.Maintenance/Alarm': { class: MethodClass.Special, readsOnly: alarmGet },
  '/etcdserverpb.Maintenance/Status': read,
  '/etcdserverpb.Maintenance/MoveLeader': write,
  '/berth.api.v1.Objects/Create': objectWrite,
  '/berth.api.v1.Objects/Update': objectWrite,
  '/berth.api.v1.Objects/UpdateStatus': objectWrite,
  '/berth.api.v1.Objects/Apply': objectWrite,
  '/berth.api.v1.Objects/Delete': objectWrite,
  '/berth.api.v1.Objects/Get': read,
  '/berth.api.v1.Objects/List': read,
  '/berth.api.v1.Objects/Watch': read,
  '/berth.api.v1.Objects/Version': read,
  '/berth.api.v1.Pods/Logs': read,
  '/berth.api.v1.Pods/Top': read,
  '/berth.api.v1.Pods/Exec': { class: MethodClass.Write, node: 'allow' },
  // The handler signs for the caller's own subject only (pkg/security/certificates-service.ts).
  '/berth.security.v1.Certificates/Renew': { class: MethodClass.Write, self: true },
  '/berth.security.v1.Certificates/Issue': write,
  // The handler removes only the member the caller's node certificate names.
  '/berth.security.v1.Membership/Leave': { class: MethodClass.Write, node: 'allow' },
};

export const DecisionStatus = {
  PermissionDenied: 'permission-denied',
  Unauthenticated: 'unauthenticated',
} as const;
export type DecisionStatus = (typeof DecisionStatus)[keyof typeof DecisionStatus];

export type Decision =
  | {
      allowed: true /** A node's object write: node-restriction.ts decides in the handler. */;
      admission: boolean;
    }
  | { allowed: false; status: DecisionStatus; message: string };

export const UNRECOGNISED_SUBJECT = 'certificate subject not recognised';
export const NO_CLIENT_CERTIFICATE =
  "no valid client certificate (none, or not signed by this cluster's CA): this node requires mutual TLS";

const allow: Decision = { allowed: true, admission: false };
const deny = (message: string): Decision => ({
  allowed: false,
  status: DecisionStatus.PermissionDenied,
  message,
});

/** `Objects/Create` from `/berth.api.v1.Objects/Create`. */
export function shortMethod(path: string): string {
  const [service = '', method = ''] = path.replace(/^\//, '').split('/');
  return `${service.slice(service.lastIndexOf('.') + 1)}/${method}`;
}

/**
 * Whether `authorize` needs the decoded request for this caller and method: only special
 * methods, for callers whose answer depends on it. Interceptors then wait for the message.
 */
export function needsRequest(caller: Caller | undefined, path: string): boolean {
  const rule = METHOD_RULES[path];
  if (!rule || rule.class !== MethodClass.Special || !caller) return false;
  if (caller.kind === 'readonly') return rule.readsOnly !== undefined;
  if (caller.kind === 'node') return rule.readsOnly !== undefined || typeof rule.node === 'function';
  return false;
}

/**
 * Decides one call. `caller` undefined: a TLS connection without a verified client
 * certificate. `request` is the decoded request, needed only when needsRequest says so
 * (without it a special method counts as a write).
 */
export function authorize(caller: Caller | undefined, path: string, request?: unknown): Decision {
  if (caller?.kind === 'insecure') return allow;
  if (!caller)
    return { allowed: false, status: DecisionStatus.Unauthenticated, message: NO_CLIENT_CERTIFICATE };
  if (caller.kind === 'unknown') {
    return { allowed: false, status: DecisionStatus.Unauthenticated, message: UNRECOGNISED_SUBJECT };
  }
  const rule = METHOD_RULES[path];
  if (!rule) {
    return deny(
      `${shortMethod(path)} has no entry in Berth's authorization table (pkg/auth/rules.ts): refused`,
    );
  }
  if (caller.kind === 'admin') return allow;
  const reads =
    rule.class === MethodClass.Read ||
    (rule.class === MethodClass.Special &&
      request !== undefined &&
      rule.readsOnly?.(requestOf(request)) === true);
  if (reads || rule.self) return allow;
  if (caller.kind === 'readonly') {
    return deny(`user ${JSON.stringify(caller.name)} is read-only: ${shortMethod(path)} is not allowed`);
  }
  const refused = `node ${JSON.stringify(caller.nodeName)} may not call ${shortMethod(path)}`;
  const access = rule.node ?? 'deny';
  if (access === 'allow') return allow;
  if (access === 'admission') return { allowed: true, admission: true };
  if (access === 'deny') return deny(refused);
  if (request === undefined) return deny(refused);
  const why = access(requestOf(request));
  return why === undefined ? allow : deny(`${refused}: ${why}`);
}

/** KV and Objects decode requests into `{ ok, value }` (their guarded deserializers). */
function requestOf(message: unknown): unknown {
  if (isRecord(message) && typeof message.ok === 'boolean' && 'size' in message) {
    return message.ok ? message.value : undefined;
  }
  return message;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** True when a Txn (or one nested in it) may put or delete; anything unrecognised counts. */
export function txnWrites(request: unknown, depth = 0): boolean {
  if (!isRecord(request) || depth > 16) return true;
  const ops = [request.success ?? [], request.failure ?? []];
  for (const list of ops) {
    if (!Array.isArray(list)) return true;
    for (const op of list) {
      if (!isRecord(op)) return true;
      if (op.request_put || op.request_delete_range) return true;
      if (op.request_txn && txnWrites(op.request_txn, depth + 1)) return true;
    }
  }
  return false;
}

function alarmGet(request: unknown): boolean {
  if (!isRecord(request)) return false;
  const a = request.action;
  return a === undefined || a === null || a === 'GET' || a === 0;
}

function learnerOnly(request: unknown): string | undefined {
  if (isRecord(request) && request.isLearner === true) return undefined;
  return 'a node may add only a learner (the way a joining node adds itself)';
}
