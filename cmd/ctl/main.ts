// berthctl's entry point (bin/berthctl.js imports this): real streams and signals, then exit.
import { run } from './program.js';

// grpc-js sets the TLS servername to the IP address when it dials one (our endpoints usually
// are IPs), and Node then prints a DEP0123 warning once per process: noise that reads like a
// fault to users. Set before the first connection is made, which is all that matters.
process.noDeprecation = true;

// `berthctl kv watch ... | head` closes our stdout: that is the reader's way to say stop.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  },
  stderrIsTTY: process.stderr.isTTY === true,
  onInterrupt: (fn) => {
    process.once('SIGINT', fn);
    process.once('SIGTERM', fn);
    return () => {
      process.off('SIGINT', fn);
      process.off('SIGTERM', fn);
    };
  },
});
process.exitCode = code;
// Nothing should be left running; if something is (a channel still closing), do not hang.
setTimeout(() => process.exit(code), 1000).unref();
