// Endo's marshal and far on the Node side. They expect the `assert` global
// and HandledPromise that SES and eventual-send install; we install those
// shims (not lockdown: freezing Node's primordials would freeze the whole
// host process). Import this module before anything else from @endo.
import 'ses/assert-shim.js';
import '@endo/eventual-send/shim.js';

export { makeMarshal } from '@endo/marshal';
export { Far, passStyleOf } from '@endo/far';
export { default as harden } from '@endo/harden';
