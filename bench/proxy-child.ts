// Berth's L4 proxy (pkg/proxy/tcp-proxy.ts) alone in its own process, for `npm run bench --
// proxy`: node proxy-child.js HOST PORT BACKEND[,BACKEND...] (each ip:port; PORT 0: the
// kernel's pick). A process of its own, as HAProxy is, so the proxy shares no event loop with
// the load generator or the backend. Writes `{"port":N}` on stdout once it accepts
// connections; exits when its stdin closes (the bench is gone, however it ended) or on
// SIGTERM, closing the proxy first.
import { destination, pino } from 'pino';
import { TcpProxy } from '../pkg/proxy/tcp-proxy.js';
import type { Backend } from '../pkg/proxy/types.js';

const [host = '127.0.0.1', portText = '', backendList = ''] = process.argv.slice(2);
const backends: Backend[] = backendList
  .split(',')
  .filter((b) => b !== '')
  .map((b) => {
    const i = b.lastIndexOf(':');
    return { ip: b.slice(0, i), port: Number(b.slice(i + 1)) };
  });
if (!Number.isInteger(Number(portText)) || backends.length === 0) {
  process.stderr.write('usage: node proxy-child.js HOST PORT IP:PORT[,IP:PORT...]\n');
  process.exit(2);
}

// Warnings only, and to stderr: stdout carries the ready line, and per-connection logging
// at info would be part of what is measured.
const logger = pino({ level: 'warn', base: { component: 'bench-proxy' } }, destination(2));
const proxy = new TcpProxy({ host, port: Number(portText), name: 'bench', backends: () => backends, logger });
await proxy.listen();
process.stdout.write(`${JSON.stringify({ port: proxy.address()?.port })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // A proxy that does not close promptly is not waited for: the figures are taken already.
  setTimeout(() => process.exit(0), 1000).unref();
  void proxy.close().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
