/**
 * /api/v1/config: the configuration file, read and changed through the API. A change is sent
 * as YAML text (comments kept) or as a JSON object (written as YAML), validated in full by the
 * same schemas and checks as the file at start (400 with every problem's key and line),
 * written atomically, versioned, and audit-logged. Secrets read as "(secret)"; sending that
 * placeholder back keeps the stored secret.
 */
import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import { ConfigSchema } from '../../config/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { isoTime } from './schemas.js';

const VersionSchema = {
  type: 'object',
  required: ['version', 'author', 'createdAt', 'comment', 'sha256'],
  properties: { version: { type: 'integer' }, author: { type: 'string' }, createdAt: { type: 'string', format: 'date-time' }, comment: { type: 'string' }, sha256: { type: 'string' } },
} as const;

export function configRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/config',
    operationId: 'getConfig',
    summary: 'The configuration in force: its version, its text and its parsed form (secrets redacted)',
    tag: 'config',
    access: { permission: 'config.read' },
    response: { 200: { type: 'object', required: ['version', 'text', 'config'], properties: { version: { type: 'integer' }, text: { type: 'string' }, config: ConfigSchema } } },
    async handler() {
      return context.config.current();
    },
  });

  defineRoute(app, {
    method: 'PUT',
    url: '/config',
    operationId: 'putConfig',
    summary: 'Replace the configuration (validated, written atomically, versioned, audit-logged)',
    tag: 'config',
    access: { permission: 'config.write' },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['comment'],
      properties: {
        text: { type: 'string', maxLength: 4_000_000, description: 'the whole file as YAML' },
        config: { type: 'object', additionalProperties: true, description: 'or the whole configuration as JSON (the schema of GET /config\'s config)' },
        comment: { type: 'string', maxLength: 1000, description: 'why: kept with the version' },
        expectedVersion: { type: 'integer', description: 'refuse (409) if the version in force is another one' },
      },
    },
    response: { 200: { type: 'object', required: ['version', 'changed'], properties: { version: { type: 'integer' }, changed: { type: 'boolean' } } } },
    async handler(request) {
      const body = request.body as { text?: string; config?: object; comment: string; expectedVersion?: number };
      if ((body.text === undefined) === (body.config === undefined)) throw new ApiError('E_VALIDATION', 'send either text (YAML) or config (JSON)');
      const text = body.text ?? stringify(body.config);
      const before = context.config.version;
      try {
        const result = await context.config.update(text, {
          author: request.principal?.actor ?? 'anonymous',
          comment: body.comment,
          ...(body.expectedVersion === undefined ? {} : { expectedVersion: body.expectedVersion }),
        });
        if ('conflict' in result) throw new ApiError('E_CONFLICT', `the configuration is at version ${result.conflict}, not ${String(body.expectedVersion)}: read it again`);
        await auditRequest(context, request, { action: 'config.update', target: '/config', outcome: 'success', details: { from: before, to: result.version, changed: result.changed, comment: body.comment } });
        return result;
      } catch (error) {
        if (!(error instanceof ApiError && error.code === 'E_CONFLICT')) {
          await auditRequest(context, request, { action: 'config.update', target: '/config', outcome: 'failure', details: { from: before, comment: body.comment, error: error instanceof Error ? error.message.slice(0, 2000) : String(error) } });
        }
        throw error;
      }
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/config/versions',
    operationId: 'listConfigVersions',
    summary: 'Earlier versions of the configuration, newest first',
    tag: 'config',
    access: { permission: 'config.read' },
    querystring: { type: 'object', additionalProperties: false, properties: PageQueryProperties },
    response: { 200: pageOf(VersionSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number };
      const page = await context.config.versions(q);
      return { items: page.items.map((v) => ({ ...v, createdAt: isoTime(v.createdAt) })), total: page.total, limit: q.limit, offset: q.offset };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/config/versions/:version',
    operationId: 'getConfigVersion',
    summary: 'One version\'s text (secrets redacted)',
    tag: 'config',
    access: { permission: 'config.read' },
    params: { type: 'object', required: ['version'], properties: { version: { type: 'integer', minimum: 1 } } },
    response: { 200: { type: 'object', required: [...VersionSchema.required, 'text'], properties: { ...VersionSchema.properties, text: { type: 'string' } } } },
    async handler(request) {
      const { version } = request.params as { version: number };
      const found = await context.config.versionText(version);
      if (found === undefined) throw new ApiError('E_NOT_FOUND', `no configuration version ${version}`);
      return { ...found, createdAt: isoTime(found.createdAt) };
    },
  });
}
