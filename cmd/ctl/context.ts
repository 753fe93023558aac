// What a command runs with: the parsed global flags, the process' streams (CtlIO, so tests
// can drive commands in-process), and clients it opens lazily. The command runner closes
// every client it opened when the command ends, however it ends.
import type * as grpc from '@grpc/grpc-js';
import { type ApiClient, createApiClient } from '../../pkg/client/api-client.js';
import { type Client, createClient } from '../../pkg/client/client.js';
import { createPodsClient, type PodsClient } from '../../pkg/client/pods-client.js';
import { staticChannelCredentials } from '../../pkg/rpc/tls.js';
import type { GlobalOptions } from './options.js';
import { renderJson, renderTable } from './output.js';

/** The outside world of one berthctl run. */
export interface CtlIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** All of standard input (kv put <key> -). */
  readStdin(): Promise<Uint8Array>;
  /** Whether stderr is a terminal (progress dots are only drawn on one). */
  readonly stderrIsTTY: boolean;
  /** Call `fn` on Ctrl-C (SIGINT) or SIGTERM; returns a function that stops listening. */
  onInterrupt(fn: () => void): () => void;
}

/** The longest wait for a connection before the next endpoint is tried (ms). */
const MAX_DIAL_MS = 2000;

export class CtlContext {
  private readonly clients: Client[] = [];
  private apiClient: ApiClient | undefined;
  private podsClient: PodsClient | undefined;
  /** Set by commands with -A and --show-labels, for the printers. */
  allNamespaces = false;
  showLabels = false;

  constructor(
    readonly io: CtlIO,
    readonly options: GlobalOptions,
  ) {}

  get json(): boolean {
    return this.options.output === 'json';
  }

  /**
   * The context's mutual TLS credentials, made once and shared by every connection of this
   * run; undefined for a context without certificates (connections are plain then).
   */
  get credentials(): grpc.ChannelCredentials | undefined {
    if (this.options.tls && !this.tlsCredentials)
      this.tlsCredentials = staticChannelCredentials(this.options.tls);
    return this.tlsCredentials;
  }
  private tlsCredentials: grpc.ChannelCredentials | undefined;

  /** What every client of this run is made with, over `endpoints`. */
  private clientOptions(endpoints: string[]) {
    const credentials = this.credentials;
    return {
      endpoints,
      requestTimeoutMs: this.options.timeoutMs,
      dialTimeoutMs: Math.min(MAX_DIAL_MS, this.options.timeoutMs),
      ...(credentials ? { credentials } : {}),
    };
  }

  /** A client over `endpoints` (default: --endpoints); closed when the command ends. */
  client(endpoints: string[] = this.options.endpoints): Client {
    const c = createClient(this.clientOptions(endpoints));
    this.clients.push(c);
    return c;
  }

  /** The object API's client over the endpoints, made once. */
  get api(): ApiClient {
    this.apiClient ??= createApiClient(this.clientOptions(this.options.endpoints));
    return this.apiClient;
  }

  /** The Pods service's client (logs, exec, top) over the endpoints, made once. */
  get pods(): PodsClient {
    this.podsClient ??= createPodsClient(this.clientOptions(this.options.endpoints));
    return this.podsClient;
  }

  /** The namespace for namespaced objects (-n, the context's, or default). */
  get namespace(): string {
    return this.options.namespace;
  }

  /** The client over --endpoints, made once. */
  get main(): Client {
    this.mainClient ??= this.client();
    return this.mainClient;
  }
  private mainClient: Client | undefined;

  println(text: string): void {
    this.io.stdout(`${text}\n`);
  }

  printJson(value: unknown): void {
    this.println(renderJson(value));
  }

  /** A table (table output) or the JSON value (json output). */
  print(table: () => { head: string[]; rows: (string | number | boolean | null)[][] }, json: () => unknown) {
    if (this.json) this.printJson(json());
    else {
      const t = table();
      this.println(renderTable(t.head, t.rows));
    }
  }

  async close(): Promise<void> {
    this.apiClient?.close();
    this.podsClient?.close();
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
  }
}
