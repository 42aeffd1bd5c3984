// A replica in a child process that a test can freeze (SIGSTOP) and whose
// store it can change behind the log's back (SIGUSR2: the next block's hash
// differs). Usage: node replica-child.js ENDPOINTS CLUSTER DIR NAME
// Prints "started", "tampered", "applied H", "halt {json}".
import { Host } from '../../host/index.js';
import { tamper } from './helpers.js';

const [endpoints, cluster, dir, name] = process.argv.slice(2);
const host = await Host.open({ path: dir, replicate: { endpoints: endpoints.split(','), cluster, name, leaseSeconds: 2, cutter: false } });
const say = (line: string) => process.stdout.write(`${line}\n`);
host.replica!.on('halt', (h) => say(`halt ${JSON.stringify(h)}`));
host.replica!.on('applied', (a: { height: number }) => say(`applied ${a.height}`));
process.on('SIGUSR2', () => {
  tamper({ host, name, dir, outcomes: new Map() });
  say('tampered');
});
process.on('SIGTERM', () => void host.close().then(() => process.exit(0)));
say('started');
