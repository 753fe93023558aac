// Every controller the manager runs on the leader, in one list.
import type { ControllerDefinition } from './manager.js';

export const CONTROLLERS: ControllerDefinition[] = [];
