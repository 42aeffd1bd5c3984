// Hardened JavaScript for every vat: frozen primordials, global harden,
// Compartments whose Date.now/Math.random throw. Order matters: prep first.
import './lockdown-prep.js';
import 'ses';

(globalThis as any).lockdown({
  errorTaming: 'unsafe',
  consoleTaming: 'unsafe',
  overrideTaming: 'min',
  stackFiltering: 'verbose',
  // A vat has no host to report to; the kernel sees errors through syscalls.
  reporting: 'none',
});
