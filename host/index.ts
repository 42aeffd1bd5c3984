// quickvat's public entry point.
import './marshal/endo.js';

export { Host, type HostOptions } from './host.js';
export { bundleFromSource, bundleId } from './bundles/vat-bundle.js';
export * from './engine/errors.js';
export { UpgradeError } from './upgrade/upgrade-error.js';
export type { Installation, InstanceKit } from './host.js';
