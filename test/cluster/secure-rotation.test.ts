// Node certificates rotate before they expire, without downtime: a secure 2-node cluster
// whose certificates live about 17 s (--node-cert-days 0.0002). n2's certificate, signed at
// its join, is renewed at two thirds of its life, and again; writes through both nodes go on
// without a single failure meanwhile, and new connections get the new certificate.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import test from 'ava';
import YAML from 'yaml';
import { createClient } from '../../pkg/client/client.js';
import { certificateInfo } from '../../pkg/pki/index.js';
import { staticChannelCredentials } from '../../pkg/rpc/tls.js';
import { BerthCluster } from '../support/berth-cluster.js';

let cluster: BerthCluster;

test.before(async () => {
  cluster = await BerthCluster.start({ size: 2, secure: true, extraArgs: ['--node-cert-days', '0.0002'] });
});

test.after.always(async () => {
  await cluster?.destroy();
});

/** The serial of the certificate a node's client port shows to a new connection. */
function servedSerial(host: string, port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
      resolve(s.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, ''));
      s.end();
    });
    s.on('error', reject);
  });
}

test('n2 renews its certificate twice while writes through both nodes never fail', async (t) => {
  const doc = YAML.parse(await readFile(cluster.adminConfig, 'utf8')) as {
    contexts: Array<Record<string, string>>;
  };
  const ctx = doc.contexts[0] as Record<string, string>;
  const pem = (k: string) => Buffer.from(ctx[k] ?? '', 'base64').toString('utf8');
  const caPem = pem('certificate-authority-data');
  const credentials = staticChannelCredentials({
    caPem,
    certPem: pem('client-certificate-data'),
    keyPem: pem('client-key-data'),
  });
  const certFile = join(cluster.pkiDir(1), 'node.crt');
  const serialOnDisk = async () =>
    certificateInfo(await readFile(certFile, 'utf8')).serial.replace(/^0+/, '');
  const first = await serialOnDisk();
  const n2 = cluster.node(1);

  let failures = 0;
  let writes = 0;
  let stop = false;
  const writers = [0, 1].map(async (i) => {
    const c = createClient({
      endpoints: [cluster.node(i).clientAddress],
      credentials,
      requestTimeoutMs: 5000,
    });
    try {
      while (!stop) {
        try {
          await c.put({
            key: new TextEncoder().encode(`/rotation/${i}`),
            value: new TextEncoder().encode(String(writes)),
          });
          writes++;
        } catch (err) {
          failures++;
          t.log(`write through n${i + 1} failed: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await c.close();
    }
  });

  const seen = new Set<string>([first]);
  const deadline = Date.now() + 60_000;
  while (seen.size < 3 && Date.now() < deadline) {
    seen.add(await serialOnDisk());
    await new Promise((r) => setTimeout(r, 500));
  }
  // A new connection to n2 is served with the certificate now on disk.
  const current = await serialOnDisk();
  const served = await servedSerial(n2.address, 2379, caPem);
  stop = true;
  await Promise.all(writers);

  t.true(seen.size >= 3, `n2's certificate serials seen: ${[...seen].join(', ')}`);
  t.is(served, current, 'new handshakes use the renewed certificate');
  t.true(writes > 50, `${writes} writes`);
  t.is(failures, 0, 'no write failed while certificates rotated');
  const log = await readFile(n2.logFile, 'utf8');
  t.true((log.match(/"certificate rotated"/g) ?? []).length >= 2);
});
