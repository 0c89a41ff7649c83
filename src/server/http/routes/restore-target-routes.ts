/**
 * Where restores through the API may write (`restore.allowed-targets`, default DATA/restores),
 * so a client can propose a target the server accepts instead of having its user guess the
 * server's folders (the console prefills its restore forms from it). The check itself is
 * restore-targets.ts, on each restore's `to`.
 */
import type { FastifyInstance } from 'fastify';
import { defineRoute } from '../route.js';
import type { ServiceContext } from '../service-context.js';

export function restoreTargetRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/restore-targets',
    operationId: 'listRestoreTargets',
    summary: 'The folders on the server that restores may write into',
    description: 'As `restore.allowed-targets` names them (default DATA/restores), in that order: a restore\'s `to` must lie inside one of them (POST …/restore refuses any other with 403 E_RESTORE_TARGET_REFUSED). For any caller who may restore somewhere.',
    tag: 'restore',
    access: { permission: 'restore.run', filtered: true },
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: { type: 'string' } } } } },
    async handler() {
      return { items: [...context.restoreTargets()] };
    },
  });
}
