// quickvat's public entry point.
import './marshal/endo.js';

export { Host, type HostOptions } from './host.js';
export * from './bundles/index.js';
export * from './review/index.js';
export { ExitNotGranted, type ExitPolicy, type ExitSpec } from './bundles/exit-policy.js';
export * from './engine/errors.js';
export { PreflightRefused, UpgradeError } from './upgrade/upgrade-error.js';
export type { Installation, InstanceKit } from './host.js';
export { isUpgradeDisconnection, type UpgradeDisconnection } from './kernel/upgrade-disconnection.js';
export { StateDirInUse } from './store/index.js';
