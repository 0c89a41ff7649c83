/**
 * /api/v1/hosts, /api/v1/vms and /api/v1/reports/protection: the inventory from the
 * configuration, each item visible to callers with `inventory.read` on its path (a VM lives
 * under `/vms/V` and under its host `/hosts/H`), and the protection report (VMs no job covers,
 * VMs past their RPO, from the repositories' snapshot lists).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HostSchema, VmSchema, type VmConfig } from '../../config/index.js';
import { coverageReport, selectVms } from '../../inventory/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties, pageList, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import type { ServiceContext } from '../service-context.js';
import { nameParams } from './schemas.js';

/** The paths a VM lives under. */
export function vmPaths(vm: Pick<VmConfig, 'name' | 'host'>): string[] {
  return [`/vms/${vm.name}`, `/hosts/${vm.host}`];
}

const VmOutSchema = { ...VmSchema, required: [...VmSchema.required, 'jobs'], properties: { ...VmSchema.properties, jobs: { type: 'array', items: { type: 'string' } } } } as const;
const HostOutSchema = { ...HostSchema, required: [...HostSchema.required, 'vms'], properties: { ...HostSchema.properties, vms: { type: 'array', items: { type: 'string' } } } } as const;

export function inventoryRoutes(app: FastifyInstance, context: ServiceContext): void {
  const config = () => context.config.config;
  const jobsOf = (vm: VmConfig) => (config().jobs ?? []).filter((j) => selectVms(j.select, [vm]).length > 0).map((j) => j.name);
  const vmOut = (vm: VmConfig) => ({ ...vm, jobs: jobsOf(vm) });
  const hostOut = (name: string) => {
    const host = (config().hosts ?? []).find((h) => h.name === name);
    return host === undefined ? undefined : { ...host, vms: (config().vms ?? []).filter((v) => v.host === name).map((v) => v.name) };
  };
  const vmByParam = (request: FastifyRequest) => (config().vms ?? []).find((v) => v.name === (request.params as { vm: string }).vm);

  defineRoute(app, {
    method: 'GET',
    url: '/hosts',
    operationId: 'listHosts',
    summary: 'Hosts (hypervisors) with their VMs',
    tag: 'inventory',
    access: { permission: 'inventory.read', filtered: true },
    querystring: { type: 'object', additionalProperties: false, properties: { ...PageQueryProperties, search: { type: 'string', maxLength: 100 } } },
    response: { 200: pageOf(HostOutSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; search?: string };
      const hosts = (config().hosts ?? [])
        .filter((h) => q.search === undefined || h.name.includes(q.search))
        .filter((h) => canSee(request, 'inventory.read', [`/hosts/${h.name}`]))
        .map((h) => hostOut(h.name));
      return pageList(hosts, q);
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/hosts/:host',
    operationId: 'getHost',
    summary: 'One host',
    tag: 'inventory',
    access: { permission: 'inventory.read', paths: (r) => [`/hosts/${(r.params as { host: string }).host}`] },
    params: nameParams('host'),
    response: { 200: HostOutSchema },
    async handler(request) {
      const { host } = request.params as { host: string };
      const found = hostOut(host);
      if (found === undefined) throw new ApiError('E_NOT_FOUND', `no host named ${host}`);
      return found;
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/vms',
    operationId: 'listVms',
    summary: 'VMs with their sources, tags, RPO and the jobs that select them',
    tag: 'inventory',
    access: { permission: 'inventory.read', filtered: true },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...PageQueryProperties,
        host: { type: 'string' },
        tag: { type: 'string' },
        search: { type: 'string', maxLength: 100, description: 'names containing this' },
        uncovered: { type: 'boolean', description: 'only VMs that no job selects' },
      },
    },
    response: { 200: pageOf(VmOutSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; host?: string; tag?: string; search?: string; uncovered?: boolean };
      const vms = (config().vms ?? [])
        .filter((v) => (q.host === undefined || v.host === q.host) && (q.tag === undefined || (v.tags ?? []).includes(q.tag)) && (q.search === undefined || v.name.includes(q.search)))
        .filter((v) => canSee(request, 'inventory.read', vmPaths(v)))
        .map(vmOut)
        .filter((v) => q.uncovered === undefined || (v.jobs.length === 0) === q.uncovered);
      return pageList(vms, q);
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/vms/:vm',
    operationId: 'getVm',
    summary: 'One VM',
    tag: 'inventory',
    access: { permission: 'inventory.read', paths: (r) => { const vm = vmByParam(r); return vm === undefined ? [`/vms/${(r.params as { vm: string }).vm}`] : vmPaths(vm); } },
    params: nameParams('vm'),
    response: { 200: VmOutSchema },
    async handler(request) {
      const vm = vmByParam(request);
      if (vm === undefined) throw new ApiError('E_NOT_FOUND', `no VM named ${(request.params as { vm: string }).vm}`);
      return vmOut(vm);
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/reports/protection',
    operationId: 'protectionReport',
    summary: 'VMs that no job covers, and VMs whose newest backup is older than their RPO (or missing)',
    tag: 'inventory',
    access: { permission: 'inventory.read', filtered: true },
    response: {
      200: {
        type: 'object',
        required: ['uncovered', 'pastRpo', 'at'],
        properties: {
          at: { type: 'string', format: 'date-time' },
          uncovered: { type: 'array', items: { type: 'string' } },
          pastRpo: {
            type: 'array',
            items: {
              type: 'object',
              required: ['vm', 'rpo', 'lastBackup', 'ageMs'],
              properties: { vm: { type: 'string' }, rpo: { type: 'string' }, lastBackup: { type: ['string', 'null'] }, ageMs: { type: ['integer', 'null'] } },
            },
          },
        },
      },
    },
    async handler(request) {
      const now = context.now();
      const report = coverageReport(config(), await context.catalog.lastBackups(), now);
      const visible = new Set((config().vms ?? []).filter((v) => canSee(request, 'inventory.read', vmPaths(v))).map((v) => v.name));
      return { at: new Date(now).toISOString(), uncovered: report.uncovered.filter((v) => visible.has(v)), pastRpo: report.pastRpo.filter((p) => visible.has(p.vm)) };
    },
  });
}
