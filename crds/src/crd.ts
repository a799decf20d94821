/** Builds a CustomResourceDefinition from a {@link KindDefinition}: the one place CRD YAML comes from. */
import type { TSchema } from '@sinclair/typebox';
import { GROUP, type KindDefinition, VERSION } from './kinds.ts';

/** A CustomResourceDefinition (apiextensions.k8s.io/v1), as plain data. */
export type Crd = Record<string, unknown>;

/** TypeBox schemas carry symbols and may share objects: a plain JSON copy is what the API server gets. */
export function plainSchema(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

/** The CRD of one kind: namespaced, one version, status subresource, the `keystile` category. */
export function crdFor(def: KindDefinition): Crd {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'keystile', 'app.kubernetes.io/part-of': 'keystile' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: [...def.shortNames],
        categories: ['keystile'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.columns.map((c) => ({ ...c })),
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: def.description,
              required: ['spec'],
              properties: {
                apiVersion: {
                  type: 'string',
                  description:
                    'APIVersion defines the versioned schema of this representation of an object. https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources',
                },
                kind: {
                  type: 'string',
                  description:
                    'Kind is a string value representing the REST resource this object represents. https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds',
                },
                metadata:
                  def.nameMaxLength === undefined
                    ? { type: 'object' }
                    : {
                        type: 'object',
                        properties: { name: { type: 'string', maxLength: def.nameMaxLength } },
                      },
                spec: plainSchema(def.spec),
                status: plainSchema(def.status),
              },
              ...(def.rules &&
                def.rules.length > 0 && { 'x-kubernetes-validations': def.rules.map((r) => ({ ...r })) }),
            },
          },
        },
      ],
    },
  };
}
