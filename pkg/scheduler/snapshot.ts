// The scheduler's view of the cluster: nodes and the pods bound to them, with each node's
// requested resources, owner counts, host ports and a label index kept incrementally, so one
// placement never re-scans every pod. Fed by the caller (watch events, assume after a choice).

import { tryParseQuantity } from '../api/schema/quantity.js';
import type { AntiTerm, PodInfo } from './pod-info.js';
import { podInfo, podKey } from './pod-info.js';
import type { SchedulingNode, SchedulingPod, Taint } from './types.js';
import { StorageInfo } from './volume-binding.js';

// FNV-1a: a per-node number the seeded tie-break mixes with, independent of insertion order.
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The value under `key`, made and stored first when missing. */
export function getOrCreate<K, V>(m: Map<K, V>, key: K, make: () => V): V {
  let v = m.get(key);
  if (v === undefined) {
    v = make();
    m.set(key, v);
  }
  return v;
}

const inc = <K>(m: Map<K, number>, k: K, by: number): void => {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
};

/**
 * One node and what is bound to it. Owned by Snapshot; read-only for everyone else.
 * A node whose object was removed while pods still name it stays as a ghost (`node`
 * undefined) so its pods are still counted if the node comes back.
 */
export class NodeInfo {
  readonly name: string;
  readonly hash: number;
  node: SchedulingNode | undefined;
  labels: Record<string, string> = {};
  ready = false;
  unschedulable = false;
  /** NoSchedule and NoExecute taints: must be tolerated. */
  hardTaints: Taint[] = [];
  /** PreferNoSchedule taints: only lower the score. */
  softTaints: Taint[] = [];
  allocCpu = 0;
  allocMemory = 0;
  allocPods = 0;
  reqCpu = 0;
  reqMemory = 0;
  readonly pods = new Map<string, PodInfo>();
  /** Controller uid -> pods of that owner on this node. */
  readonly owners = new Map<string, number>();
  /** 'TCP/80' -> host IP -> count. */
  readonly ports = new Map<string, Map<string, number>>();
  /** 'key=value' -> pods with that label (anti-affinity look-ups). */
  readonly byLabel = new Map<string, Set<PodInfo>>();

  constructor(name: string) {
    this.name = name;
    this.hash = fnv1a(name);
  }

  setNode(node: SchedulingNode): void {
    this.node = node;
    this.labels = node.metadata.labels ?? {};
    this.unschedulable = node.spec?.unschedulable === true;
    const taints = node.spec?.taints ?? [];
    this.hardTaints = taints.filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
    this.softTaints = taints.filter((t) => t.effect === 'PreferNoSchedule');
    const st = node.status ?? {};
    this.ready = (st.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    const res = (name: string) => st.allocatable?.[name] ?? st.capacity?.[name];
    this.allocCpu = Math.floor((tryParseQuantity(res('cpu')) ?? 0) * 1000 + 1e-9);
    this.allocMemory = Math.floor(tryParseQuantity(res('memory')) ?? 0);
    this.allocPods = Math.floor(tryParseQuantity(res('pods')) ?? 110);
  }

  add(p: PodInfo): void {
    this.pods.set(p.key, p);
    this.reqCpu += p.cpu;
    this.reqMemory += p.memory;
    if (p.ownerUid !== undefined) inc(this.owners, p.ownerUid, 1);
    for (const hp of p.ports) {
      const ips = getOrCreate(this.ports, hp.key, () => new Map());
      inc(ips, hp.ip, 1);
    }
    for (const [k, v] of Object.entries(p.labels)) {
      const lk = `${k}=${v}`;
      const set = getOrCreate(this.byLabel, lk, () => new Set());
      set.add(p);
    }
  }

  remove(p: PodInfo): void {
    if (this.pods.get(p.key) !== p) return;
    this.pods.delete(p.key);
    this.reqCpu -= p.cpu;
    this.reqMemory -= p.memory;
    if (p.ownerUid !== undefined) inc(this.owners, p.ownerUid, -1);
    for (const hp of p.ports) {
      const ips = this.ports.get(hp.key);
      if (!ips) continue;
      inc(ips, hp.ip, -1);
      if (ips.size === 0) this.ports.delete(hp.key);
    }
    for (const [k, v] of Object.entries(p.labels)) {
      const lk = `${k}=${v}`;
      const set = this.byLabel.get(lk);
      set?.delete(p);
      if (set?.size === 0) this.byLabel.delete(lk);
    }
  }
}

/** An existing pod's anti-affinity term, indexed for the symmetric check. */
export interface AntiEntry {
  pod: PodInfo;
  node: NodeInfo;
  term: AntiTerm;
}

const ANY = '*';

/**
 * Nodes and bound pods. Not thread-of-control aware: the caller applies watch events and
 * `assume`s in order; a pod is keyed by namespace/name, so the bound pod arriving from the
 * watch replaces the assumed one. Objects passed in are read, never mutated, and kept.
 */
export class Snapshot {
  private readonly infos = new Map<string, NodeInfo>();
  private readonly podNodes = new Map<string, NodeInfo>();
  /** Anti-affinity terms of bound pods by the term's index key ('*' when it has none). */
  private readonly antiIndex = new Map<string, Set<AntiEntry>>();
  private readonly antiEntries = new Map<string, AntiEntry[]>();
  private live: NodeInfo[] | undefined;
  /** Claims, volumes and storage classes, for the VolumeBinding filter. */
  readonly storage = new StorageInfo();

  addNode(node: SchedulingNode): void {
    const name = node.metadata.name ?? '';
    const info = getOrCreate(this.infos, name, () => new NodeInfo(name));
    info.setNode(node);
    this.live = undefined;
  }

  updateNode(node: SchedulingNode): void {
    this.addNode(node);
  }

  removeNode(name: string): void {
    const info = this.infos.get(name);
    if (!info) return;
    info.node = undefined;
    if (info.pods.size === 0) this.infos.delete(name);
    this.live = undefined;
  }

  /** A bound pod (spec.nodeName set) added or updated; a finished pod no longer counts. */
  addPod(pod: SchedulingPod): void {
    const phase = pod.status?.phase;
    if (!pod.spec.nodeName || phase === 'Succeeded' || phase === 'Failed') {
      this.removePod(pod);
      return;
    }
    this.place(podInfo(pod), pod.spec.nodeName);
  }

  removePod(pod: SchedulingPod | string): void {
    const key = typeof pod === 'string' ? pod : podKey(pod);
    const info = this.podNodes.get(key);
    if (!info) return;
    const p = info.pods.get(key);
    if (p) info.remove(p);
    this.podNodes.delete(key);
    for (const e of this.antiEntries.get(key) ?? []) this.antiIndex.get(e.term.indexKey ?? ANY)?.delete(e);
    this.antiEntries.delete(key);
    if (info.node === undefined && info.pods.size === 0) this.infos.delete(info.name);
  }

  /** Binds optimistically, so the next pod of a batch sees this one; the watch confirms later. */
  assume(pod: SchedulingPod, node: string): void {
    const p = podInfo(pod);
    p.nodeName = node;
    this.place(p, node);
  }

  /** Nodes that exist (not ghosts), in insertion order. */
  nodes(): readonly NodeInfo[] {
    if (!this.live) this.live = [...this.infos.values()].filter((n) => n.node !== undefined);
    return this.live;
  }

  node(name: string): NodeInfo | undefined {
    return this.infos.get(name);
  }

  /** Bound pods' anti-affinity terms that may select a pod with these labels. */
  *antiCandidates(labels: Record<string, string>): Iterable<AntiEntry> {
    if (this.antiIndex.size === 0) return;
    for (const [k, v] of Object.entries(labels)) {
      const set = this.antiIndex.get(`${k}=${v}`);
      if (set) yield* set;
    }
    const any = this.antiIndex.get(ANY);
    if (any) yield* any;
  }

  private place(p: PodInfo, nodeName: string): void {
    this.removePod(p.key);
    const info = getOrCreate(this.infos, nodeName, () => new NodeInfo(nodeName));
    info.add(p);
    this.podNodes.set(p.key, info);
    if (p.anti.length === 0) return;
    const entries = p.anti.map((term) => ({ pod: p, node: info, term }));
    for (const e of entries) {
      const k = e.term.indexKey ?? ANY;
      const set = getOrCreate(this.antiIndex, k, () => new Set());
      set.add(e);
    }
    this.antiEntries.set(p.key, entries);
  }
}
