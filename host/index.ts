// quickvat's public entry point.
import './marshal/endo.js';

export { Host, type HostOptions } from './host.js';
export { bundleFromSource, bundleId } from './bundles/vat-bundle.js';
export * from './engine/errors.js';
