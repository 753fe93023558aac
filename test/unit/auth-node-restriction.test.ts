// NodeRestriction: what a node's certificate may write through the Objects API.
import test from 'ava';
import {
  admitNodeWrite,
  NODE_LEASE_NAMESPACE,
  type NodeWrite,
  WriteVerb,
} from '../../pkg/auth/node-restriction.js';
import type { ApiObject } from '../../pkg/api/types.js';

const pod = (name: string, nodeName?: string): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: nodeName ? { nodeName } : {},
});

const w = (partial: Partial<NodeWrite> & Pick<NodeWrite, 'kind' | 'verb'>): NodeWrite => ({
  namespace: undefined,
  name: '',
  stored: undefined,
  ...partial,
});
const ALL_VERBS = Object.values(WriteVerb);

test('a node may write its own Node object only', (t) => {
  for (const verb of ALL_VERBS) {
    t.true(admitNodeWrite('n2', w({ kind: 'Node', verb, name: 'n2' })).allowed, verb);
    const d = admitNodeWrite('n2', w({ kind: 'Node', verb, name: 'n1' }));
    t.false(d.allowed, verb);
  }
  t.like(admitNodeWrite('n2', w({ kind: 'Node', verb: 'update', name: 'n1' })), {
    message: 'node "n2" may not update node n1: a node may modify only its own Node object',
  });
});

test('a node may write only its own Lease in the node-lease namespace', (t) => {
  const lease = (namespace: string, name: string) =>
    admitNodeWrite('n1', w({ kind: 'Lease', verb: 'update', namespace, name })).allowed;
  t.true(lease(NODE_LEASE_NAMESPACE, 'n1'));
  t.false(lease(NODE_LEASE_NAMESPACE, 'n2'));
  t.false(lease('default', 'n1'));
  t.false(lease('berth-system', 'controller-leader'));
});

test('a node updates the status of, and deletes, only pods stored as bound to it', (t) => {
  for (const verb of [WriteVerb.UpdateStatus, WriteVerb.Delete]) {
    const mine = w({ kind: 'Pod', verb, namespace: 'default', name: 'web-2', stored: pod('web-2', 'n2') });
    t.true(admitNodeWrite('n2', mine).allowed);
    const theirs = w({ kind: 'Pod', verb, namespace: 'default', name: 'web-1', stored: pod('web-1', 'n1') });
    t.deepEqual(admitNodeWrite('n2', theirs), {
      allowed: false,
      notFound: false,
      message: 'node "n2" may not modify pod default/web-1 bound to node "n1"',
    });
    const pending = w({ kind: 'Pod', verb, namespace: 'default', name: 'p', stored: pod('p') });
    t.deepEqual(admitNodeWrite('n2', pending), {
      allowed: false,
      notFound: false,
      message: 'node "n2" may not modify pod default/p: it is not bound to any node',
    });
    const gone = w({ kind: 'Pod', verb, namespace: 'default', name: 'p' });
    t.like(admitNodeWrite('n2', gone), { allowed: false, notFound: true });
  }
});

test('a node may not create, update or apply pods, even ones bound to it', (t) => {
  for (const verb of [WriteVerb.Create, WriteVerb.Update, WriteVerb.Apply]) {
    const d = admitNodeWrite(
      'n2',
      w({ kind: 'Pod', verb, namespace: 'default', name: 'x', stored: pod('x', 'n2') }),
    );
    t.like(d, { allowed: false, notFound: false }, verb);
  }
});

test('a node records events but does not delete them', (t) => {
  for (const verb of [WriteVerb.Create, WriteVerb.Update, WriteVerb.Apply]) {
    t.true(admitNodeWrite('n1', w({ kind: 'Event', verb, namespace: 'default', name: 'e' })).allowed, verb);
  }
  t.false(
    admitNodeWrite('n1', w({ kind: 'Event', verb: 'delete', namespace: 'default', name: 'e' })).allowed,
  );
  t.false(
    admitNodeWrite('n1', w({ kind: 'Event', verb: 'updateStatus', namespace: 'default', name: 'e' })).allowed,
  );
});

test('every other kind is refused, naming the node and the object', (t) => {
  for (const kind of ['Deployment', 'Secret', 'Namespace', 'ConfigMap', 'Service', 'Nonsense']) {
    for (const verb of ALL_VERBS) t.false(admitNodeWrite('n1', w({ kind, verb, name: 'a' })).allowed, kind);
  }
  const d = admitNodeWrite('n1', w({ kind: 'Secret', verb: 'create', namespace: 'default', name: 'db' }));
  t.regex(d.allowed ? '' : d.message, /^node "n1" may not create secret default\/db: /);
});
