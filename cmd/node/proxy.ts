// The node's proxy, wired: the Service proxy (every Service port on its cluster IP, and on
// this node's address for NodePorts), the Ingress router on --ingress-port, and the drain
// record that lets terminating pods' SIGTERM wait for every node's proxy.
import type { Logger } from 'pino';
import type { ApiServer } from '../../pkg/api/server/api-server.js';
import { IngressServer } from '../../pkg/proxy/ingress-server.js';
import { ProxyDrain } from '../../pkg/proxy/drain.js';
import { Proxier } from '../../pkg/proxy/proxier.js';
import type { KV } from '../../pkg/store/types.js';
import { hostOf, type NodeConfig } from './config.js';

export interface RunningProxy {
  drain: ProxyDrain;
  stop(): Promise<void>;
}

const RETRY_MS = 5000;

export function startProxy(cfg: NodeConfig, kv: KV, api: ApiServer, logger: Logger): RunningProxy {
  const drain = new ProxyDrain({
    kv,
    api,
    nodeName: cfg.name,
    timeoutMs: cfg.proxy.drainTimeoutMs,
    logger,
  });
  if (!cfg.proxy.enabled) {
    void drain.withdraw();
    return { drain, stop: async () => {} };
  }
  const nodeAddress = hostOf(cfg.clientAdvertise);
  const proxier = new Proxier({
    api,
    nodeName: cfg.name,
    nodeAddress,
    idleTimeoutMs: cfg.proxy.idleTimeoutMs,
    logger,
    onApplied: (revision) => drain.report(revision),
  });
  const ingress =
    cfg.proxy.ingressPort > 0
      ? new IngressServer({
          api,
          backends: proxier,
          host: nodeAddress,
          port: cfg.proxy.ingressPort,
          nodeName: cfg.name,
          logger: logger.child({ component: 'ingress' }),
        })
      : undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const startIngress = () => {
    ingress?.start().then(
      () => logger.info({ address: `${nodeAddress}:${cfg.proxy.ingressPort}` }, 'ingress router listening'),
      (err: Error) => {
        if (stopped) return;
        logger.error(
          { err: err.message, address: `${nodeAddress}:${cfg.proxy.ingressPort}` },
          `ingress router cannot listen; retrying in ${RETRY_MS / 1000} s (--ingress-port to change it)`,
        );
        retry = setTimeout(startIngress, RETRY_MS);
      },
    );
  };
  void proxier
    .start()
    .then(startIngress, (err: Error) => logger.error({ err }, 'service proxy did not start'));
  return {
    drain,
    stop: async () => {
      stopped = true;
      clearTimeout(retry);
      drain.close();
      await ingress?.stop();
      await proxier.stop();
    },
  };
}
