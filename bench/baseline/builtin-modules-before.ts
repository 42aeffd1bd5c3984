// Stands in for runtime/builtin-modules.ts when the exo bench builds the
// runtime as it was before issue 12: the built-in modules it had then.
import { E, Far, passStyleOf } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
import type { VatData } from '../../runtime/vat-data.js';

const far = harden({ E, Far, passStyleOf });

export function builtinModules(vatData: VatData): Readonly<Record<string, Readonly<Record<string, unknown>>>> {
  return harden({
    '@quickvat/far': far,
    '@endo/far': far,
    '@endo/promise-kit': harden({ makePromiseKit }),
    '@quickvat/vat-data': vatData.api,
    '@agoric/vat-data': vatData.api,
  });
}

export function builtinExportNames(): Record<string, string[]> {
  return {};
}
