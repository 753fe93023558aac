// What the parts of pkg/proxy share: a backend (where a Service's pod is reached: its node's
// address and the host port the agent published) and the read-only view of a Service's
// ready backends that both the L4 proxy and the Ingress router route by.

/** One ready endpoint of a Service port: `ip:port` is the pod's node address and host port. */
export interface Backend {
  ip: string;
  port: number;
  /** The node running the pod, when known (for logs). */
  nodeName?: string;
  /** `namespace/name` of the pod, when known (for logs). */
  pod?: string;
}

/** A Service port as an Ingress backend names it: by number or by name. */
export interface ServicePortRef {
  number?: number;
  name?: string;
}

/** The proxy's current view of Services and their Endpoints. */
export interface ServiceBackends {
  /**
   * Ready backends of one Service port, in a stable order. `undefined` when the Service or
   * the port does not exist; `[]` when it exists but has no ready endpoint.
   */
  backends(namespace: string, service: string, port: ServicePortRef): Backend[] | undefined;
  /** Called after any change of the view (Services or Endpoints). */
  onChange(listener: () => void): void;
}
