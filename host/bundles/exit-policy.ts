// Named exits: what a hosting environment puts behind each `host:*` import.
// An installation's policy grants each exit one of three kinds:
//   { data: value }        parameters or a test stand-in: plain data the host decides
//   { module: sourceText } a powerless module (pure code the host supplies)
//   { power: 'console' }   a powerful built-in, only in attenuated form
// A bundle importing an exit its policy does not grant is refused.
import { bundleFromSource } from './vat-bundle.js';
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

function toGrant(exit: string, spec: ExitSpec, serialize: (value: unknown) => Capdata): ExitGrant {
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
  throw new TypeError(`named exit ${exit}: expected { data }, { module } or { power: 'console' }`);
}
