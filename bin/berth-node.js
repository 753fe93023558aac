#!/usr/bin/env node
// berth-node: one per machine. The program itself is compiled from cmd/node/main.ts.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cmd/node/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('berth-node: dist/cmd/node/main.js not found; run npm run build first');
  process.exit(1);
}
await import(main.href);
