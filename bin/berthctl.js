#!/usr/bin/env node
// berthctl: the command-line client. The program itself is compiled from cmd/ctl/main.ts.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cmd/ctl/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('berthctl: dist/cmd/ctl/main.js not found; run npm run build first');
  process.exit(1);
}
await import(main.href);
