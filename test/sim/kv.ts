/**
 * The simulation's replicated state machine: a string key-value map with client sessions
 * (Raft thesis §6.3), so a proposal that the network duplicates or a client retries is
 * applied at most once. Its snapshot holds the sessions too.
 */
export interface KvCommand {
  /** client id and that client's sequence number for this command */
  c: number;
  s: number;
  op: 'put' | 'cas';
  k: string;
  v: string;
  /** cas: the value expected; null means "absent" */
  e?: string | null;
}

export interface KvResult {
  client: number;
  seq: number;
  output: boolean | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export class KvStateMachine {
  data = new Map<string, string>();
  private sessions = new Map<number, { seq: number; output: boolean | undefined }>();

  apply(bytes: Uint8Array): KvResult | undefined {
    const cmd = JSON.parse(decoder.decode(bytes)) as KvCommand;
    const session = this.sessions.get(cmd.c);
    if (session && cmd.s <= session.seq) {
      // Duplicate: answer the latest one again, skip older ones.
      return cmd.s === session.seq ? { client: cmd.c, seq: cmd.s, output: session.output } : undefined;
    }
    let output: boolean | undefined;
    if (cmd.op === 'put') {
      this.data.set(cmd.k, cmd.v);
    } else {
      const cur = this.data.get(cmd.k) ?? null;
      output = cur === (cmd.e ?? null);
      if (output) this.data.set(cmd.k, cmd.v);
    }
    this.sessions.set(cmd.c, { seq: cmd.s, output });
    return { client: cmd.c, seq: cmd.s, output };
  }

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ data: [...this.data], sessions: [...this.sessions] }));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const kv = new KvStateMachine();
    if (bytes.length === 0) return kv;
    const parsed = JSON.parse(decoder.decode(bytes)) as {
      data: [string, string][];
      sessions: [number, { seq: number; output: boolean | undefined }][];
    };
    kv.data = new Map(parsed.data);
    kv.sessions = new Map(parsed.sessions);
    return kv;
  }
}
