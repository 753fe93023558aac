// Identities from certificate subjects, Kubernetes-style: O= values are groups, CN the user.

import test from 'ava';
import {
  ADMIN_GROUP,
  caHash,
  certificateInfo,
  checkCaHash,
  createCA,
  identityFromCertificate,
  issueCertificate,
  NODES_GROUP,
  nodeCommonName,
  READONLY_GROUP,
} from '../../pkg/pki/index.js';

const id = (commonName: string, organizations: string[]) =>
  identityFromCertificate({ commonName, organizations });

test('groups map to admin, readonly and node identities', (t) => {
  t.deepEqual(id('alice', [ADMIN_GROUP]), { kind: 'admin', name: 'alice' });
  t.deepEqual(id('bob', ['team-x', READONLY_GROUP]), { kind: 'readonly', name: 'bob' });
  t.is(nodeCommonName('worker-1'), 'system:node:worker-1');
  t.deepEqual(id(nodeCommonName('worker-1'), [NODES_GROUP]), { kind: 'node', nodeName: 'worker-1' });
});

test('anything else is unknown', (t) => {
  t.deepEqual(id('carol', []), { kind: 'unknown' });
  t.deepEqual(id('carol', ['team-x']), { kind: 'unknown' });
  t.deepEqual(id('', [ADMIN_GROUP]), { kind: 'unknown' }, 'no CN');
  t.deepEqual(id('worker-1', [NODES_GROUP]), { kind: 'unknown' }, 'node group without a node CN');
  t.deepEqual(id(nodeCommonName(''), [NODES_GROUP]), { kind: 'unknown' }, 'node CN without a name');
  t.deepEqual(id(nodeCommonName('worker-1'), []), { kind: 'unknown' }, 'node CN without the group');
  t.deepEqual(id('alice', ['System:Masters']), { kind: 'unknown' }, 'groups are case-sensitive');
});

test('the most privileged group wins', (t) => {
  t.deepEqual(id('alice', [READONLY_GROUP, ADMIN_GROUP]), { kind: 'admin', name: 'alice' });
  t.deepEqual(id(nodeCommonName('n1'), [READONLY_GROUP, NODES_GROUP]), { kind: 'node', nodeName: 'n1' });
});

test('identity and CA pin from real certificates', async (t) => {
  const ca = await createCA({ commonName: 'berth-ca' });
  const node = await issueCertificate(ca, {
    commonName: nodeCommonName('worker-7'),
    organizations: [NODES_GROUP],
    usage: 'both',
    validDays: 1,
  });
  t.deepEqual(identityFromCertificate(certificateInfo(node.certPem)), { kind: 'node', nodeName: 'worker-7' });

  const pin = caHash(ca.certPem);
  t.regex(pin, /^sha256:[0-9a-f]{64}$/);
  t.true(checkCaHash(ca.certPem, pin));
  t.true(checkCaHash(ca.certPem, pin.toUpperCase().replace('SHA256:', 'sha256:')));
  t.false(checkCaHash(ca.certPem, caHash(node.certPem)));
  t.false(checkCaHash(ca.certPem, pin.slice(0, -1)));
  t.false(checkCaHash(ca.certPem, pin.slice('sha256:'.length)), 'the algorithm prefix is required');
  t.false(checkCaHash('garbage', pin));
});
