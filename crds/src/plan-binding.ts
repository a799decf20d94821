/** PlanBinding: which keys get which plan on which API stages. */
import { type Static, Type } from '@sinclair/typebox';
import {
  Conditions,
  DnsLabel,
  LabelSelector,
  API_KEY_NAME_MAX_LENGTH,
  LocalRef,
  Obj,
  ObjectName,
  ObservedGeneration,
} from './schema.ts';

/** An API stage: AWS's (API, stage), Tencent's (service, environment). */
export const ApiStage = Type.Object(
  {
    api: DnsLabel("The API, e.g. 'orders' (AWS's API, Tencent's service)."),
    stage: DnsLabel("The stage, e.g. 'prod' (AWS's stage, Tencent's environment: release, prepub, test)."),
  },
  { description: 'An API stage.' },
);

/** PlanBinding.spec */
export const PlanBindingSpec = Obj(
  {
    planRef: LocalRef('The UsagePlan the keys get.', 'UsagePlan'),
    keys: Obj(
      {
        names: Type.Optional(
          Type.Array(ObjectName('An ApiKey name.', API_KEY_NAME_MAX_LENGTH), {
            description: 'ApiKeys by name.',
            minItems: 1,
            maxItems: 5000,
            'x-kubernetes-list-type': 'set',
          }),
        ),
        selector: Type.Optional(LabelSelector),
      },
      {
        description: 'The keys: by name, by label selector, or both (their union).',
        rules: [
          {
            rule: 'has(self.names) || has(self.selector)',
            message: 'name keys in keys.names, select them with keys.selector, or both',
          },
        ],
      },
    ),
    apiStages: Type.Array(ApiStage, {
      description:
        'The API stages the plan applies to for these keys. A key is on at most one plan per API stage.',
      minItems: 1,
      maxItems: 64,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['api', 'stage'],
    }),
  },
  { description: 'A plan, a set of keys, and the API stages where the plan applies to them.' },
);

/** One key the binding could not bind, and why. */
export const BindingProblem = Type.Object(
  {
    key: Type.String({ description: 'The ApiKey.', maxLength: 253 }),
    apiStage: Type.Optional(
      Type.String({ description: "The API stage, as 'api/stage', where it applies.", maxLength: 128 }),
    ),
    reason: Type.String({
      description: 'KeyNotFound, KeyAlreadyBound, KeyDisabled, KeyExpired, KeyNotReady or PlanFull.',
      maxLength: 64,
    }),
    message: Type.String({ description: 'What is wrong and what to do.', maxLength: 1024 }),
  },
  { description: 'A key the binding does not (fully) bind.' },
);

/** PlanBinding.status */
export const PlanBindingStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    boundKeys: Type.Optional(
      Type.Integer({
        description: 'How many keys this binding binds on at least one of its stages.',
        minimum: 0,
      }),
    ),
    problems: Type.Optional(
      Type.Array(BindingProblem, {
        description: 'Keys not bound as asked, and why (the first 50; problemCount has them all).',
        maxItems: 50,
      }),
    ),
    problemCount: Type.Optional(
      Type.Integer({ description: 'How many problems there are in all.', minimum: 0 }),
    ),
  },
  { description: 'What the operator observed.' },
);

/** The TypeScript type of a PlanBinding's spec. */
export type PlanBindingSpec = Static<typeof PlanBindingSpec>;
/** The TypeScript type of a PlanBinding's status. */
export type PlanBindingStatus = Static<typeof PlanBindingStatus>;
/** An API stage. */
export type ApiStage = Static<typeof ApiStage>;
/** One binding problem. */
export type BindingProblem = Static<typeof BindingProblem>;
