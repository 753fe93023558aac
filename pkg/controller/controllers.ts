// Every controller the manager runs on the leader, in one list.
import { deploymentController } from './deployment.js';
import { endpointsController } from './endpoints.js';
import { garbageCollectorController } from './garbage-collector.js';
import { horizontalPodAutoscalerController } from './hpa.js';
import { ingressStatusController } from './ingress-status.js';
import type { ControllerDefinition } from './manager.js';
import { namespaceController } from './namespace.js';
import { nodeLifecycleController } from './node-lifecycle.js';
import { volumeBinderController } from './pv-binder.js';
import { storageProtectionController } from './pv-protection.js';
import { localPathProvisionerController } from './pv-provisioner.js';
import { replicaSetController } from './replicaset.js';
import { serviceLoadBalancerController } from './service-lb.js';

export const CONTROLLERS: ControllerDefinition[] = [
  replicaSetController,
  deploymentController,
  endpointsController,
  nodeLifecycleController,
  garbageCollectorController,
  namespaceController,
  serviceLoadBalancerController,
  ingressStatusController,
  volumeBinderController,
  localPathProvisionerController,
  storageProtectionController,
  horizontalPodAutoscalerController,
];
