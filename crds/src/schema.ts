/**
 * Building blocks for Kubernetes structural schemas written with TypeBox. One definition gives the CRD's
 * OpenAPI schema, the TypeScript type (Static<>) and the ajv validator. Kubernetes refuses some JSON
 * Schema forms in structural schemas (const, patternProperties, properties beside additionalProperties),
 * so enums, maps and the like are spelled here the way the API server accepts them.
 */
import {
  type ObjectOptions,
  type TObject,
  type TProperties,
  type TString,
  type TUnsafe,
  Type,
} from '@sinclair/typebox';

/** A CEL validation rule, as `x-kubernetes-validations` takes it. */
export interface CelRule {
  readonly rule: string;
  readonly message?: string;
  readonly messageExpression?: string;
  /** The field the error is reported on, e.g. `.burstLimit`. */
  readonly fieldPath?: string;
  readonly reason?:
    'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  readonly optionalOldSelf?: boolean;
}

/** Every schema carries a description, so `kubectl explain` teaches (a test checks it). */
export interface Described {
  readonly description: string;
}

/** A string enum as Kubernetes wants it (`type: string` + `enum`), typed as the union of its values. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: Described & { default?: T[number] },
): TUnsafe<T[number]> {
  // maxLength lets the API server bound the cost of CEL rules that read the value.
  const maxLength = Math.max(...values.map((v) => v.length));
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], maxLength, ...options });
}

/** A map of strings (`additionalProperties: {type: string}`), bounded so CEL rules stay within budget. */
export function StringMap(
  options: Described & { maxProperties: number; maxValueLength: number },
): TUnsafe<Record<string, string>> {
  const { maxValueLength, ...rest } = options;
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: maxValueLength },
    ...rest,
  });
}

/** An object with CEL rules attached. */
export function Obj<T extends TProperties>(
  properties: T,
  options: Described & ObjectOptions & { rules?: readonly CelRule[] },
): TObject<T> {
  const { rules, ...rest } = options;
  return Type.Object(properties, {
    ...rest,
    ...(rules && rules.length > 0 && { 'x-kubernetes-validations': rules }),
  });
}

/** A DNS-1123 label: lower-case letters, digits and '-', at most 63 characters (names of APIs, stages). */
export function DnsLabel(description: string): TString {
  return Type.String({
    description,
    minLength: 1,
    maxLength: 63,
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  });
}

/**
 * A Kubernetes object name (DNS-1123 subdomain), at most 253 characters, or `maxLength` when the kind
 * named is shorter (an ApiKey's name is at most {@link API_KEY_NAME_MAX_LENGTH}).
 */
export function ObjectName(description: string, maxLength = 253): TString {
  return Type.String({
    description,
    minLength: 1,
    maxLength,
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  });
}

/**
 * The longest ApiKey name: the Secret holding a key's value is labelled with the ApiKey's name, and a
 * label value is at most 63 characters.
 */
export const API_KEY_NAME_MAX_LENGTH = 63;

/** A reference to an object in the same namespace, by name (at most `maxLength` characters). */
export function LocalRef(description: string, what: string, maxLength?: number): TObject<{ name: TString }> {
  return Type.Object(
    { name: ObjectName(`The name of the ${what}, in the same namespace.`, maxLength) },
    { description },
  );
}

/**
 * A Go duration as Kubernetes spells them (`90s`, `15m`, `24h`, `1h30m`). With `max`, a CEL rule refuses
 * a longer one with `max.message` (a duration too long for Go's, about 292 years, is refused by CEL's
 * own conversion error, naming the field too).
 */
export function Duration(
  description: string,
  defaultValue?: string,
  max?: { readonly duration: string; readonly message: string },
): TString {
  return Type.String({
    description,
    maxLength: 32,
    pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$',
    ...(defaultValue !== undefined && { default: defaultValue }),
    ...(max && {
      'x-kubernetes-validations': [
        { rule: `duration(self) <= duration('${max.duration}')`, message: max.message },
      ] satisfies CelRule[],
    }),
  });
}

/** metav1.Condition, the standard status condition. */
export const Condition = Type.Object(
  {
    type: Type.String({
      description: 'The condition type, e.g. Ready.',
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'True, False or Unknown.' }),
    observedGeneration: Type.Optional(
      Type.Integer({ description: 'The .metadata.generation the condition was set for.', minimum: 0 }),
    ),
    lastTransitionTime: Type.String({
      description: 'When the status last changed (not when the condition was last written).',
      format: 'date-time',
    }),
    reason: Type.String({
      description: "A CamelCase word a program can match on, e.g. 'KeyAlreadyBound'.",
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: Type.String({
      description: 'What happened, for a person, and what to do about it.',
      maxLength: 32768,
    }),
  },
  { description: 'A standard Kubernetes condition.' },
);

/** The conditions list, a map keyed by type. */
export const Conditions = Type.Array(Condition, {
  description: "Standard conditions; 'Ready' says whether the resource does what it asks for, and why not.",
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

/** status.observedGeneration. */
export const ObservedGeneration = Type.Integer({
  description: 'The .metadata.generation the operator last acted on; status describes that generation.',
  minimum: 0,
});

/** metav1.LabelSelector. */
export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      StringMap({
        description: 'Labels an object must carry, all of them.',
        maxProperties: 32,
        maxValueLength: 63,
      }),
    ),
    matchExpressions: Type.Optional(
      Type.Array(
        Type.Object(
          {
            key: Type.String({ description: 'The label key.', maxLength: 317 }),
            operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, {
              description: "How the label's value relates to the values: In, NotIn, Exists or DoesNotExist.",
            }),
            values: Type.Optional(
              Type.Array(Type.String({ description: 'A label value.', maxLength: 63 }), {
                description: 'The values for In and NotIn; empty for Exists and DoesNotExist.',
                maxItems: 64,
              }),
            ),
          },
          {
            description: 'A label requirement.',
            'x-kubernetes-validations': [
              {
                rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
                message: 'In and NotIn need values; Exists and DoesNotExist take none',
              },
            ],
          },
        ),
        { description: 'Label requirements, all of which must hold.', maxItems: 16 },
      ),
    ),
  },
  { description: 'A standard Kubernetes label selector.', 'x-kubernetes-map-type': 'atomic' },
);
