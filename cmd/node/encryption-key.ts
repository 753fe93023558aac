// `berth-node encryption-key add|use|drop|status`: edit the Secrets keyring in a PKI
// directory (encryption.json). Every node must hold every key in use, so a rotation goes in
// three rounds, each one "edit on one machine, copy the file to every node's PKI directory,
// restart the nodes one at a time":
//
//   1. add            a new key, not used for writing yet: every node learns it
//   2. use NAME       it seals every write; the leader reseals the stored Secrets under it
//   3. drop OLD       once the leader logged "every Secret sealed under NAME"
//
// Writing with a key before every node holds it would leave some nodes unable to read.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  formatKeyringFile,
  generateKey,
  type Keyring,
  parseKeyringFile,
} from '../../pkg/api/server/encryption.js';
import { NodeConfigError } from './config.js';
import { PKI, writePrivateFile } from './pki-dir.js';

export type KeyAction =
  | { kind: 'add'; name?: string }
  | { kind: 'use'; name: string }
  | { kind: 'drop'; name: string };

/** The keyring after `action`; a NodeConfigError says why not. Pure but for key generation. */
export function editKeyring(keyring: Keyring, action: KeyAction): Keyring {
  const keys = new Map(keyring.keys);
  switch (action.kind) {
    case 'add': {
      const k = generateKey(action.name);
      if (keys.has(k.name)) throw new NodeConfigError(`the keyring has a key "${k.name}" already`);
      keys.set(k.name, k.secret);
      return { primary: keyring.primary, keys };
    }
    case 'use':
      if (!keys.has(action.name))
        throw new NodeConfigError(`no key "${action.name}" (keys: ${[...keys.keys()].join(', ')})`);
      return { primary: action.name, keys };
    case 'drop':
      if (!keys.has(action.name)) throw new NodeConfigError(`no key "${action.name}"`);
      if (action.name === keyring.primary)
        throw new NodeConfigError(`"${action.name}" seals every write: use another key first`);
      keys.delete(action.name);
      return { primary: keyring.primary, keys };
  }
}

export function describeKeyring(keyring: Keyring): string[] {
  return [...keyring.keys.keys()].map(
    (name) => `${name}${name === keyring.primary ? '  (primary: seals every write)' : ''}`,
  );
}

export function buildEncryptionKeyCommand(): Command {
  return new Command('berth-node encryption-key')
    .description(
      'Show or change the Secrets keyring in a PKI directory (add, use NAME, drop NAME, status). After each change copy encryption.json to every node and restart them one at a time.',
    )
    .argument('<action>', 'add | use | drop | status')
    .argument('[name]', 'the key (use, drop; add: optional name for the new key)')
    .requiredOption('--pki-dir <dir>', "the node's PKI directory (as given to berth-node)")
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

export async function runEncryptionKey(
  action: string,
  name: string | undefined,
  pkiDir: string,
  print: (line: string) => void,
): Promise<void> {
  const path = join(pkiDir, PKI.encryption);
  let keyring: Keyring;
  try {
    keyring = parseKeyringFile(await readFile(path, 'utf8'));
  } catch (err) {
    throw new NodeConfigError(`${path}: ${(err as Error).message}`);
  }
  if (action === 'status') {
    for (const line of describeKeyring(keyring)) print(line);
    return;
  }
  let change: KeyAction;
  if (action === 'add') change = { kind: 'add', ...(name ? { name } : {}) };
  else if ((action === 'use' || action === 'drop') && name) change = { kind: action, name };
  else if (action === 'use' || action === 'drop') throw new NodeConfigError(`${action} needs the key's name`);
  else throw new NodeConfigError(`unknown action "${action}": add, use, drop or status`);
  const next = editKeyring(keyring, change);
  await writePrivateFile(path, formatKeyringFile(next));
  for (const line of describeKeyring(next)) print(line);
  print(`Now copy ${path} to every node's PKI directory and restart the nodes one at a time.`);
}
