// Where the example contracts live (contracts/<name>/<version>/contract.js),
// for the demo, the CLI's tests and the benchmarks.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to dist/host/; the contracts stay in contracts/.
const CONTRACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'contracts');

export function exampleContractPath(name: string, version: string): string {
  return path.join(CONTRACTS, name, version, 'contract.js');
}

export function exampleContractSource(name: string, version: string): string {
  return fs.readFileSync(exampleContractPath(name, version), 'utf8');
}
