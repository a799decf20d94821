/** ajv validators for the rendered contract, compiled once from the schemas in format.ts. */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Static, TSchema } from '@sinclair/typebox';
import {
  ACCEPTED_CONTRACT_VERSIONS,
  KeysShard,
  SecretsShard,
  StageIndex,
  StandaloneConfig,
} from './format.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: true, allErrors: false, discriminator: true }));

/** The outcome of parsing one rendered document. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

function parser<S extends TSchema>(schema: S, what: string): (text: string) => Parsed<Static<S>> {
  const validate: ValidateFunction = ajv.compile(schema);
  return (text) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { ok: false, error: `${what} is not JSON: ${(err as Error).message}` };
    }
    const version = (value as { version?: unknown } | null)?.version;
    if (typeof version === 'string' && !ACCEPTED_CONTRACT_VERSIONS.includes(version)) {
      return {
        ok: false,
        error: `${what} has contract version ${version}; this build reads ${ACCEPTED_CONTRACT_VERSIONS.join(', ')}`,
      };
    }
    if (!validate(value)) {
      const e = validate.errors?.[0];
      return {
        ok: false,
        error: `${what} is invalid at ${e?.instancePath || '/'}: ${e?.message ?? 'unknown'}`,
      };
    }
    return { ok: true, value: value as Static<S> };
  };
}

/** Parses and validates an index.json. */
export const parseIndex = parser(StageIndex, 'index.json');
/** Parses and validates a keys.json. */
export const parseKeysShard = parser(KeysShard, 'keys.json');
/** Parses and validates a secrets.json. */
export const parseSecretsShard = parser(SecretsShard, 'secrets.json');
/** Parses and validates a standalone config file. */
export const parseStandalone = parser(StandaloneConfig, 'the standalone config');
