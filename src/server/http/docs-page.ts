/**
 * The API reference page: plain HTML rendered on the server from the OpenAPI document, with
 * inline styles and no script, so it works offline and in isolated networks (no CDN). Per
 * tag, each operation with its method, path, summary, required permission, parameters,
 * request body and responses (schemas shown as JSON).
 */
interface OpenApiOperation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: Array<{ name: string; in: string; required?: boolean; description?: string; schema?: unknown }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  'x-permission'?: string;
}
interface OpenApiDocument {
  info?: { title?: string; version?: string; description?: string };
  paths?: Record<string, Record<string, OpenApiOperation>>;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const json = (value: unknown) => `<pre>${escape(JSON.stringify(value, null, 2))}</pre>`;

export function renderApiReference(document: OpenApiDocument): string {
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(document.paths ?? {})) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] ?? 'other';
      const params = (op.parameters ?? []).map((p) => `<tr><td><code>${escape(p.name)}</code></td><td>${escape(p.in)}</td><td>${p.required === true ? 'yes' : ''}</td><td><code>${escape(JSON.stringify(p.schema ?? {}))}</code></td></tr>`).join('');
      const body = Object.entries(op.requestBody?.content ?? {}).map(([type, c]) => `<h4>Request body (${escape(type)})</h4>${json(c.schema)}`).join('');
      const responses = Object.entries(op.responses ?? {})
        .map(([status, r]) => `<details><summary>${escape(status)} ${escape(r.description ?? '')}</summary>${Object.entries(r.content ?? {}).map(([type, c]) => `<p>${escape(type)}</p>${json(c.schema)}`).join('')}</details>`)
        .join('');
      const html = `<section id="${escape(op.operationId ?? `${method}-${path}`)}"><h3><span class="m ${escape(method)}">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code></h3>
<p>${escape(op.summary ?? '')}</p>${op.description === undefined ? '' : `<p>${escape(op.description)}</p>`}
<p class="perm">Permission: <code>${escape(op['x-permission'] ?? '?')}</code>${op.operationId === undefined ? '' : ` · operation <code>${escape(op.operationId)}</code>`}</p>
${params === '' ? '' : `<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>${params}</table>`}${body}<h4>Responses</h4>${responses}</section>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), html]);
    }
  }
  const toc = [...byTag.keys()].map((t) => `<a href="#tag-${escape(t)}">${escape(t)}</a>`).join(' · ');
  const sections = [...byTag.entries()].map(([t, ops]) => `<h2 id="tag-${escape(t)}">${escape(t)}</h2>${ops.join('\n')}`).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(document.info?.title ?? 'API')} reference</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#222;background:#fff}
@media (prefers-color-scheme:dark){body{color:#ddd;background:#16181c}pre,code{background:#23262d!important}}
section{border-top:1px solid #8884;padding:.5rem 0}pre{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:13px}code{background:#f4f4f4;padding:0 .2rem}
.m{display:inline-block;min-width:4.5rem;font-weight:bold}.get{color:#1a7f37}.post{color:#0969da}.put{color:#9a6700}.delete{color:#cf222e}.perm{font-size:13px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #8884;padding:.2rem .4rem;text-align:left}</style></head>
<body><h1>${escape(document.info?.title ?? 'API')} ${escape(document.info?.version ?? '')}</h1><p>${escape(document.info?.description ?? '')}</p>
<p>The machine-readable document: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p><nav>${toc}</nav>${sections}</body></html>`;
}
