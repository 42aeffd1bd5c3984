// Named exits: what a hosting environment puts behind each `host:*` import.
// An installation's policy grants each exit one of three kinds:
//   { data: value }        parameters or a test stand-in: plain data the host decides
//   { module: sourceText } a powerless module (pure code the host supplies)
//   { power: 'console' }   a powerful built-in, only in attenuated form
// A bundle importing an exit its policy does not grant is refused.
import { bundleFromSource } from './vat-bundle.js';
import { isNamedExit } from './manifest.js';
import type { Capdata } from '../kernel/refs.js';

export type ExitSpec = { readonly data: unknown } | { readonly module: string } | { readonly power: 'console' };
export type ExitPolicy = Readonly<Record<string, ExitSpec>>;
export type ExitGrant =
  | { readonly kind: 'data'; readonly value: Capdata }
  | { readonly kind: 'module'; readonly source: string }
  | { readonly kind: 'power'; readonly name: 'console' };

export class ExitNotGranted extends Error {
  override name = 'ExitNotGranted';
  constructor(
    readonly who: string,
    readonly exit: string,
    granted: readonly string[],
  ) {
    super(
      `${who} imports named exit "${exit}", which its exit policy does not grant` +
        ` (granted: ${granted.length ? granted.join(', ') : 'none'})`,
    );
  }
}

/**
 * Checks every entry of a policy, whatever path it arrives by (install
 * options, upgrade options, an admin capability's setExits or upgrade): each
 * key must be a `host:*` specifier and each spec exactly one of the three
 * kinds, with plain data, a module that compiles and imports nothing, or the
 * console power. Throws TypeError naming the exit; nothing is stored before
 * this passes (issue 13).
 */
export function validateExitPolicy(policy: unknown, serialize: (value: unknown) => Capdata, who: string): ExitPolicy {
  if (policy === undefined) return {};
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new TypeError(`${who}: exits must be a record of named exit -> spec, got ${policy === null ? 'null' : Array.isArray(policy) ? 'an array' : typeof policy}`);
  }
  for (const [exit, spec] of Object.entries(policy)) {
    if (!isNamedExit(exit)) throw new TypeError(`${who}: exit ${JSON.stringify(exit)} is not a named exit (host:<name>)`);
    try {
      toGrant(exit, spec as ExitSpec, serialize);
    } catch (err) {
      throw new TypeError(`${who}: ${(err as Error).message}`);
    }
  }
  return policy as ExitPolicy;
}

/** The grants for the exits a manifest needs; throws ExitNotGranted for the first missing one. */
export function grantExits(
  needed: readonly string[],
  policy: ExitPolicy,
  serialize: (value: unknown) => Capdata,
  who: string,
): Record<string, ExitGrant> {
  const grants: Record<string, ExitGrant> = {};
  for (const exit of [...needed].sort()) {
    const spec = Object.prototype.hasOwnProperty.call(policy, exit) ? policy[exit] : undefined;
    if (!spec) throw new ExitNotGranted(who, exit, Object.keys(policy).sort());
    grants[exit] = toGrant(exit, spec, serialize);
  }
  return grants;
}

const SPEC_KEYS = ['data', 'module', 'power'];

function toGrant(exit: string, spec: ExitSpec, serialize: (value: unknown) => Capdata): ExitGrant {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new TypeError(`named exit ${exit}: expected { data }, { module } or { power: 'console' }, got ${spec === null ? 'null' : Array.isArray(spec) ? 'an array' : typeof spec}`);
  }
  const keys = Object.keys(spec);
  if (keys.length !== 1 || !SPEC_KEYS.includes(keys[0])) {
    throw new TypeError(`named exit ${exit}: expected exactly one of { data }, { module } or { power: 'console' }, got keys ${JSON.stringify(keys)}`);
  }
  if ('data' in spec) {
    const value = serialize(spec.data);
    if (value.slots.length > 0) throw new TypeError(`named exit ${exit}: data must be plain data, without object references`);
    return { kind: 'data', value };
  }
  if ('module' in spec) {
    if (typeof spec.module !== 'string') throw new TypeError(`named exit ${exit}: module must be source text`);
    let source: string;
    try {
      source = bundleFromSource(spec.module, exit).modules[exit].source;
    } catch (err) {
      throw new Error(`named exit ${exit}: module does not compile: ${(err as Error).message}`);
    }
    if (/\brequire\(/.test(source)) throw new Error(`named exit ${exit}: a powerless module may not import anything`);
    return { kind: 'module', source };
  }
  if ('power' in spec && spec.power === 'console') return { kind: 'power', name: 'console' };
  const power = (spec as { power?: unknown }).power;
  throw new TypeError(`named exit ${exit}: unknown power ${JSON.stringify(power) ?? String(power)} (the only power a policy may grant is 'console')`);
}
