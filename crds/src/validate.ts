/**
 * ajv validators compiled from the same TypeBox schemas as the CRDs, for checking resources where no
 * API server is at hand (`keystile render` offline, tests). They check the structural schema (types,
 * enums, bounds, patterns, required fields); the CEL rules (`x-kubernetes-validations`) are the API
 * server's to enforce and are carried along here as declared, unevaluated keywords.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { KINDS, API_VERSION } from './kinds.ts';
import { plainSchema } from './crd.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** The Kubernetes extension keywords structural schemas use; ajv must know them to stay strict. */
export const KUBERNETES_KEYWORDS = [
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
] as const;

/** A new strict ajv that accepts the Kubernetes keywords and the formats CRDs use. */
export function newAjv(): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: true, useDefaults: true, strictTypes: false });
  addFormats(ajv);
  for (const keyword of KUBERNETES_KEYWORDS) ajv.addKeyword({ keyword });
  return ajv;
}

/** One problem with a resource, naming the field as the API server would (`spec.throttle.burstLimit`). */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

const ajv = newAjv();
const specValidators = new Map<string, ValidateFunction>(
  KINDS.map((def) => [def.kind, ajv.compile(plainSchema(def.spec))]),
);

function fieldOf(prefix: string, err: ErrorObject): string {
  const path = err.instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('');
  const missing = err.keyword === 'required' ? `.${String(err.params['missingProperty'])}` : '';
  return `${prefix}${path}${missing}`;
}

/** A DNS-1123 subdomain: what the API server accepts as a custom resource's name. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Checks a Keystile resource's apiVersion, kind, name (a DNS subdomain, its length too) and spec (filling in the schema's defaults, as the
 * API server does). Returns the problems, empty when it is valid.
 */
export function validateResource(obj: unknown): FieldError[] {
  if (typeof obj !== 'object' || obj === null) return [{ field: '', message: 'not an object' }];
  const o = obj as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown }; spec?: unknown };
  if (o.apiVersion !== API_VERSION) return [{ field: 'apiVersion', message: `must be ${API_VERSION}` }];
  const validate = typeof o.kind === 'string' ? specValidators.get(o.kind) : undefined;
  if (!validate) return [{ field: 'kind', message: `must be one of ${KINDS.map((k) => k.kind).join(', ')}` }];
  const errors: FieldError[] = [];
  const maxName = KINDS.find((k) => k.kind === o.kind)?.nameMaxLength;
  if (typeof o.metadata?.name !== 'string' || o.metadata.name === '') {
    errors.push({ field: 'metadata.name', message: 'is required' });
  } else if (maxName !== undefined && o.metadata.name.length > maxName) {
    errors.push({ field: 'metadata.name', message: `must be at most ${maxName} characters` });
  } else if (!DNS_SUBDOMAIN.test(o.metadata.name)) {
    errors.push({
      field: 'metadata.name',
      message:
        "must be a DNS subdomain, as the API server requires: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
    });
  }
  if (o.spec === undefined) return [...errors, { field: 'spec', message: 'is required' }];
  if (!validate(o.spec)) {
    for (const err of validate.errors ?? [])
      errors.push({ field: fieldOf('spec', err), message: err.message ?? 'is invalid' });
  }
  return errors;
}
