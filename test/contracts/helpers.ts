// Shared helpers for the example-contract tests (not a test file itself).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UpgradeError } from '../../host/index.js';

// Tests compile to dist/test/contracts/; the contracts stay in contracts/.
const contractsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'contracts');

export function contractSource(name: 'ledger' | 'escrow' | 'escrow-exo' | 'auction', version: 'v1' | 'v2'): string {
  return fs.readFileSync(path.join(contractsDir, name, version, 'contract.js'), 'utf8');
}

/**
 * A copy of a contract's source in which the durable kind `kind` is no longer
 * defined: its defineDurableKind(provideKindHandle(baggage, 'kind'), ...) call
 * becomes a call to a stand-in that returns a maker which throws if used.
 */
export function withoutKindDefinition(source: string, kind: string): string {
  const pattern = new RegExp(`defineDurableKind(?:Multi)?\\(\\s*provideKindHandle\\((\\w+), '${kind}'\\)`);
  assert.match(source, pattern, `the source defines kind ${kind}`);
  const broken = source.replace(pattern, `skipKindDefinition(provideKindHandle($1, '${kind}')`);
  return `${broken}\nfunction skipKindDefinition() {\n  return () => {\n    throw Error('kind ${kind} was removed from this version');\n  };\n}\n`;
}

/** Asserts that `upgrade` fails with an UpgradeError naming `kind` as not redefined. */
export async function assertUpgradeRefused(upgrade: Promise<unknown>, kind: string): Promise<UpgradeError> {
  let caught: unknown;
  try {
    await upgrade;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UpgradeError, `expected an UpgradeError, got ${String(caught)}`);
  assert.match(caught.message, new RegExp(`kind "${kind}" \\(defined by incarnation 1\\) was not redefined`));
  // Pre-flight refuses it before anything starts (issue 13).
  assert.match(caught.message, /refused: pre-flight found 1 problem: \[kind-not-redefined\]/);
  return caught;
}
