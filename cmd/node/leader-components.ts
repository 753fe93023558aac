// What runs on the Raft leader only: the scheduler and the controller manager with its
// controllers. Listed here, in one place, so the node's wiring stays short.
import type { Logger } from 'pino';
import type { ControllerOptions } from '../../pkg/controller/manager.js';
import { ControllerManager, DEFAULT_CONTROLLER_OPTIONS } from '../../pkg/controller/manager.js';
import type { LeaderComponent } from '../../pkg/controller/leader.js';
import { CONTROLLERS } from '../../pkg/controller/controllers.js';
import { SchedulerLoop } from '../../pkg/scheduler/loop.js';

export function leaderComponents(
  logger: Logger,
  options: ControllerOptions = DEFAULT_CONTROLLER_OPTIONS,
): LeaderComponent[] {
  return [
    new SchedulerLoop({ logger: logger.child({ component: 'scheduler' }) }),
    new ControllerManager(CONTROLLERS, logger.child({ component: 'controllers' }), options),
  ];
}
