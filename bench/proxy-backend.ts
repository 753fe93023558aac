// The HTTP backend of `npm run bench -- proxy`, run as its own process (node proxy-backend.js
// HOST BODY_BYTES) so it shares no event loop with the load generator or the proxy under test.
// It listens on HOST at a port the kernel picks, keeps connections alive, answers every request
// with 200 and a fixed body, and writes `{"port":N}` on stdout once it listens. It exits when
// its stdin closes (the bench is gone, however it ended) or on SIGTERM.
import { createServer } from 'node:http';

const host = process.argv[2] ?? '127.0.0.1';
const bodyBytes = Number(process.argv[3] ?? '128');
const body = Buffer.alloc(bodyBytes, 'x');
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

const server = createServer((req, res) => {
  // Drain the (empty) request body so keep-alive reuses the connection.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
// wrk keeps every connection open for the whole run; do not let idle ones be closed under it.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

server.listen(0, host, () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

const stop = () => process.exit(0);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
