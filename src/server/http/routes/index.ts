/**
 * Every route group of the API, in the order they appear in the OpenAPI document. A new group
 * (runs, tasks, restores, browsing…) is one file exporting `(app, context) => void` that
 * declares its routes with `defineRoute`, and one line here.
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../service-context.js';
import { agentRoutes } from './agent-routes.js';
import { approvalRoutes } from './approval-routes.js';
import { auditRoutes } from './audit-routes.js';
import { authRoutes } from './auth-routes.js';
import { configRoutes } from './config-routes.js';
import { editorPreviewRoutes } from './editor-preview-routes.js';
import { eventRoutes } from './event-routes.js';
import { fileRoutes } from './file-routes.js';
import { inventoryRoutes } from './inventory-routes.js';
import { jobRoutes } from './job-routes.js';
import { repositoryRoutes } from './repository-routes.js';
import { repositoryUpkeepRoutes } from './repository-upkeep-routes.js';
import { restoreTargetRoutes } from './restore-target-routes.js';
import { runRoutes } from './run-routes.js';
import { schedulerRoutes } from './scheduler-routes.js';
import { snapshotDiffRoutes } from './snapshot-diff-routes.js';
import { snapshotRecordRoutes } from './snapshot-record-routes.js';
import { snapshotTagRoutes } from './snapshot-tag-routes.js';
import { systemRoutes } from './system-routes.js';
import { taskRoutes } from './task-routes.js';
import { taskActionRoutes } from './task-action-routes.js';
import { tokenRoutes } from './token-routes.js';
import { userRoutes } from './user-routes.js';
import { workerRoutes } from './worker-routes.js';

export type RouteGroup = (app: FastifyInstance, context: ServiceContext) => void;

export const ROUTE_GROUPS: readonly RouteGroup[] = [
  systemRoutes,
  authRoutes,
  userRoutes,
  tokenRoutes,
  approvalRoutes,
  auditRoutes,
  configRoutes,
  inventoryRoutes,
  jobRoutes,
  repositoryRoutes,
  repositoryUpkeepRoutes,
  snapshotRecordRoutes,
  snapshotTagRoutes,
  runRoutes,
  taskRoutes,
  eventRoutes,
  schedulerRoutes,
  taskActionRoutes,
  restoreTargetRoutes,
  fileRoutes,
  snapshotDiffRoutes,
  editorPreviewRoutes,
  workerRoutes,
  agentRoutes,
];
