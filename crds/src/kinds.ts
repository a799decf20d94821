/** The four kinds of keystile.dev/v1alpha1, with what their CRDs show: names, columns, schemas. */
import type { TSchema } from '@sinclair/typebox';
import { ApiKeySpec, ApiKeyStatus, KEY_SECRET_PREFIX } from './api-key.ts';
import { PlanBindingSpec, PlanBindingStatus } from './plan-binding.ts';
import { UsageAdjustmentSpec, UsageAdjustmentStatus } from './usage-adjustment.ts';
import { UsagePlanSpec, UsagePlanStatus } from './usage-plan.ts';
import { API_KEY_NAME_MAX_LENGTH, type CelRule } from './schema.ts';

/** The API group. */
export const GROUP = 'keystile.dev';
/** The served and stored version. */
export const VERSION = 'v1alpha1';
/** apiVersion of every Keystile resource. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A printer column, as `kubectl get` shows it. */
export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

/** What makes one CRD. */
export interface KindDefinition {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly description: string;
  readonly spec: TSchema;
  readonly status: TSchema;
  readonly columns: readonly PrinterColumn[];
  /** CEL rules on the whole object (the only place `self.metadata.name` can be read). */
  readonly rules?: readonly CelRule[];
  /** The longest name an object of the kind may have, when shorter than Kubernetes' 253 characters. */
  readonly nameMaxLength?: number;
}

const ready: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Whether the resource does what it asks for.',
};
const reason: PrinterColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  description: 'Why, in a word.',
};
const age: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'How long ago it was created.',
};

/** Every kind Keystile defines. */
export const KINDS: readonly KindDefinition[] = [
  {
    kind: 'ApiKey',
    plural: 'apikeys',
    singular: 'apikey',
    // The Secret holding the key's value is labelled with the ApiKey's name, and a label value is at
    // most 63 characters: a longer name could never get a value.
    nameMaxLength: API_KEY_NAME_MAX_LENGTH,
    rules: [
      {
        // The operator writes (and owns) the Secrets of that prefix: imported from this key's own, the
        // user's Secret would be overwritten and its value lost; from another key's, the import would
        // read (and label) a Secret that key owns.
        rule: `self.spec.valueFrom != 'Secret' || !has(self.spec.secretRef) || !self.spec.secretRef.name.startsWith('${KEY_SECRET_PREFIX}')`,
        messageExpression: `'secretRef.name ' + self.spec.secretRef.name + (self.spec.secretRef.name == '${KEY_SECRET_PREFIX}' + self.metadata.name ? ' is the Secret the operator writes for this ApiKey' : ' is named as the Secrets the operator writes for ApiKeys') + ' (${KEY_SECRET_PREFIX}<name>): import the value from a Secret of another name'`,
        fieldPath: '.spec.secretRef.name',
      },
    ],
    shortNames: ['ak', 'apik'],
    description:
      'An API key a customer calls the API with: a generated or imported secret value (or a Tencent-style key pair), enabled or not, with an optional expiry, customer and rotation. Its value lives in a Secret; enforcers get only its hash.',
    spec: ApiKeySpec,
    status: ApiKeyStatus,
    columns: [
      { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'ApiKey or KeyPair.' },
      {
        name: 'Enabled',
        type: 'boolean',
        jsonPath: '.spec.enabled',
        description: 'Whether the key is accepted.',
      },
      { name: 'Key ID', type: 'string', jsonPath: '.status.keyId', description: 'The non-secret key id.' },
      {
        name: 'Customer',
        type: 'string',
        jsonPath: '.spec.customer',
        description: 'Whom the key belongs to.',
      },
      {
        name: 'Plan',
        type: 'string',
        jsonPath: '.status.plans[0]',
        description: 'The (first) plan and stage it is on.',
      },
      {
        name: 'Used',
        type: 'integer',
        jsonPath: '.status.usage[0].used',
        description: 'Quota used this period.',
      },
      {
        name: 'Remaining',
        type: 'integer',
        jsonPath: '.status.usage[0].remaining',
        description: 'Quota left this period.',
      },
      {
        name: 'Limit',
        type: 'integer',
        jsonPath: '.status.usage[0].limit',
        description: 'The effective quota limit this period (plan limit plus adjustments).',
        priority: 1,
      },
      ready,
      { ...reason, priority: 1 },
      {
        name: 'Expires',
        type: 'date',
        jsonPath: '.spec.expiresAt',
        description: 'When the key stops working.',
        priority: 1,
      },
      age,
    ],
  },
  {
    kind: 'UsagePlan',
    plural: 'usageplans',
    singular: 'usageplan',
    shortNames: ['up', 'plan'],
    description:
      'A usage plan: a token-bucket throttle (rate and burst) and a quota per calendar day, week or month, with per-route overrides, applied per key (or per customer) across every API stage it is bound to.',
    spec: UsagePlanSpec,
    status: UsagePlanStatus,
    columns: [
      {
        name: 'Rate',
        type: 'number',
        jsonPath: '.spec.throttle.rateLimit',
        description: 'Requests per second.',
      },
      { name: 'Burst', type: 'integer', jsonPath: '.spec.throttle.burstLimit', description: 'Bucket size.' },
      { name: 'Quota', type: 'integer', jsonPath: '.spec.quota.limit', description: 'Requests per period.' },
      { name: 'Period', type: 'string', jsonPath: '.spec.quota.period', description: 'DAY, WEEK or MONTH.' },
      { name: 'Keys', type: 'integer', jsonPath: '.status.keyCount', description: 'Keys bound.' },
      { name: 'Shadow', type: 'boolean', jsonPath: '.spec.shadow', description: 'Shadow mode.', priority: 1 },
      {
        name: 'Shared',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="CountersShared")].status',
        description: 'Whether every enforcer of the plan counts against one shared quota.',
        priority: 1,
      },
      ready,
      { ...reason, priority: 1 },
      age,
    ],
  },
  {
    kind: 'PlanBinding',
    plural: 'planbindings',
    singular: 'planbinding',
    shortNames: ['pb'],
    description:
      'Binds a usage plan and a set of keys (by name or label selector) to API stages. A key is on at most one plan per API stage: the older binding wins, the other reports the conflict.',
    spec: PlanBindingSpec,
    status: PlanBindingStatus,
    columns: [
      { name: 'Plan', type: 'string', jsonPath: '.spec.planRef.name', description: 'The UsagePlan.' },
      { name: 'Keys', type: 'integer', jsonPath: '.status.boundKeys', description: 'Keys bound.' },
      {
        name: 'Problems',
        type: 'integer',
        jsonPath: '.status.problemCount',
        description: 'Keys not bound as asked.',
      },
      ready,
      reason,
      age,
    ],
  },
  {
    kind: 'UsageAdjustment',
    plural: 'usageadjustments',
    singular: 'usageadjustment',
    shortNames: ['ua'],
    description:
      "A one-off grant (positive amount) or take-back (negative) of a key's or customer's remaining quota in a plan's current period (AWS's UpdateUsage). Immutable, and applied exactly once.",
    spec: UsageAdjustmentSpec,
    status: UsageAdjustmentStatus,
    columns: [
      { name: 'Plan', type: 'string', jsonPath: '.spec.planRef.name', description: 'The UsagePlan.' },
      { name: 'Key', type: 'string', jsonPath: '.spec.keyRef.name', description: 'The ApiKey.' },
      { name: 'Customer', type: 'string', jsonPath: '.spec.customer', description: 'The customer.' },
      {
        name: 'Amount',
        type: 'integer',
        jsonPath: '.spec.amount',
        description: 'Requests granted (+) or taken (-).',
      },
      {
        name: 'Period',
        type: 'string',
        jsonPath: '.status.period',
        description: 'The period it applied to.',
      },
      {
        name: 'Applied',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Applied")].status',
        description: 'Whether an enforcer has applied it.',
      },
      {
        name: 'Reason',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Applied")].reason',
        description: 'Rendered, Applied, or why not.',
      },
      age,
    ],
  },
];
