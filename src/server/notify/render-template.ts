/**
 * Webhook bodies from a template. The template is a JSON value (written in the YAML
 * configuration); each string in it may hold placeholders `{{name}}` or `{{a.b}}` naming a
 * field of the message's context (render-message.ts lists them). A string that is exactly one
 * placeholder becomes the field's value with its JSON type (a number, a list of VMs); inside a
 * longer string the value is written as text (objects as JSON). An unknown name gives the empty
 * string (or null alone). The body is then `JSON.stringify` of the result, so it is always
 * valid JSON whatever the values hold (quotes, newlines in error texts).
 *
 * @example { text: "{{severity}}: {{summary}}", vms: "{{vms}}" }
 */

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
const ONLY_PLACEHOLDER = /^\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}$/;

/** Renders `template` against `context` (see the module comment). */
export function renderTemplate(template: unknown, context: Record<string, unknown>): unknown {
  if (typeof template === 'string') {
    const only = ONLY_PLACEHOLDER.exec(template);
    if (only !== null) return lookUp(context, only[1] as string) ?? null;
    return template.replace(PLACEHOLDER, (_, name: string) => asText(lookUp(context, name)));
  }
  if (Array.isArray(template)) return template.map((item) => renderTemplate(item, context));
  if (typeof template === 'object' && template !== null) {
    return Object.fromEntries(Object.entries(template).map(([key, value]) => [key, renderTemplate(value, context)]));
  }
  return template;
}

function lookUp(context: Record<string, unknown>, name: string): unknown {
  let value: unknown = context;
  for (const key of name.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
