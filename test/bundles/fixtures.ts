// Module-graph fixtures for the bundle and review tests, written into fresh
// temporary directories (not a test file itself).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type Tree = Record<string, string>;

const made: string[] = [];

/** Writes `tree` (relative path -> text) under a new temporary directory and returns that directory. */
export function writeTree(tree: Tree, prefix = 'quickvat-bundles-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  for (const [rel, text] of Object.entries(tree)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  return dir;
}

export function removeTrees(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

const PACKAGE_JSON = JSON.stringify({ name: 'fixture-contracts', version: '1.0.0', type: 'module' });

/** A math library in node_modules, as a package manager would install it. */
const MATHLIB: Tree = {
  'node_modules/mathlib/package.json': JSON.stringify({ name: 'mathlib', version: '4.1.0', type: 'module', exports: { '.': { import: './src/index.js' } } }),
  'node_modules/mathlib/src/index.js': `export { gcd } from './gcd.js';\nexport const square = (n) => n * n;\n`,
  'node_modules/mathlib/src/gcd.js': `export function gcd(a, b) {\n  while (b) [a, b] = [b, a % b];\n  return a;\n}\n`,
};

/**
 * Two contracts sharing a local library and the mathlib package, and a
 * vat-runnable two-module contract whose entry imports a helper by relative path.
 */
export const TWO_CONTRACTS: Tree = {
  'package.json': PACKAGE_JSON,
  ...MATHLIB,
  'lib/shared.js': `import { gcd } from 'mathlib';\nexport const reduce = (n, d) => { const g = gcd(n, d); return [n / g, d / g]; };\n`,
  'contracts/alpha/contract.js': `import { Far } from '@endo/far';\nimport { reduce } from '../../lib/shared.js';\nexport function buildRootObject() {\n  return Far('alpha', { reduce: (n, d) => reduce(n, d) });\n}\n`,
  'contracts/beta/contract.js': `import { Far } from '@endo/far';\nimport { reduce } from '../../lib/shared.js';\nimport { square } from 'mathlib';\nimport { label } from './label.js';\nexport function buildRootObject() {\n  return Far('beta', { area: (n) => label(square(n)), reduce });\n}\n`,
  'contracts/beta/label.js': `export const label = (n) => 'area ' + n;\n`,
};

/** A Node built-in two imports deep. */
export const USES_FS: Tree = {
  'package.json': PACKAGE_JSON,
  'contracts/x/v1/contract.js': `import { load } from '../../../lib/util.js';\nexport const start = () => load();\n`,
  'lib/util.js': `import { readFileSync } from 'fs';\nexport const load = () => readFileSync('/etc/passwd', 'utf8');\n`,
};

export const USES_NATIVE: Tree = {
  'package.json': PACKAGE_JSON,
  'contract.js': `import { open } from 'fastdb';\nexport const start = () => open();\n`,
  'node_modules/fastdb/package.json': JSON.stringify({ name: 'fastdb', version: '2.0.0', main: 'index.js' }),
  'node_modules/fastdb/index.js': `exports.open = () => 1;\n`,
  'node_modules/fastdb/binding.gyp': `{ "targets": [] }\n`,
};

export const USES_EXIT: Tree = {
  'package.json': PACKAGE_JSON,
  'contract.js': `import { Far } from '@quickvat/far';\nimport params from 'host:parameters';\nimport { fee } from './fee.js';\nexport function buildRootObject() {\n  return Far('root', { fee: () => fee(params) });\n}\n`,
  'fee.js': `import * as oracle from 'host:price-oracle';\nexport const fee = (p) => p.fee + oracle.spread;\n`,
};

export const TYPESCRIPT: Tree = {
  'package.json': PACKAGE_JSON,
  'contract.ts': [
    `import { Far } from '@endo/far';`,
    `import { scale, type Scaler } from './scale.js';`,
    `import type { Unused } from './types.js';`,
    `enum Mode { Plain = 1, Double = 2 }`,
    `export function buildRootObject() {`,
    `  const scaler: Scaler = { factor: Mode.Double };`,
    `  let nothing: Unused | undefined;`,
    `  return Far('ts-root', { scale: (n: number): number => scale(scaler, n), mode: () => Mode[Mode.Double] });`,
    `}`,
    ``,
  ].join('\n'),
  'scale.ts': `export interface Scaler { factor: number }\nexport const scale = (s: Scaler, n: number): number => s.factor * n;\n`,
  'types.ts': `export type Unused = { never: true };\n`,
};

/** v1 and v2 of one contract, for review: v2 changes the entry, keeps math.js and the shared lib, adds audit.js and drops legacy.js. */
export const V1_V2: Tree = {
  'package.json': PACKAGE_JSON,
  'contracts/demo/lib/shared.js': `export const clamp = (n, lo, hi) => Math.min(hi, Math.max(lo, n));\n`,
  'contracts/demo/v1/contract.js': `import { clamp } from '../lib/shared.js';\nimport { add } from './math.js';\nimport { old } from './legacy.js';\nexport const run = (a, b) => clamp(add(a, b), 0, 100) + old();\n`,
  'contracts/demo/v1/math.js': `export const add = (a, b) => a + b;\n`,
  'contracts/demo/v1/legacy.js': `export const old = () => 0;\n`,
  'contracts/demo/v2/contract.js': `import { clamp } from '../lib/shared.js';\nimport { add } from './math.js';\nimport { audit } from './audit.js';\n// Raise the cap to 1000 (proposal 7); every result is audited.\nexport const run = (a, b) => audit(clamp(add(a, b), 0, 1000));\nexport const banner = '</script><script>alert("pwned")</script>';\n`,
  'contracts/demo/v2/math.js': `export const add = (a, b) => a + b;\n`,
  'contracts/demo/v2/audit.js': `export const audit = (n) => n;\n`,
};
