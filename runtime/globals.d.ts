// Globals the guest runtime has after lockdown and the eventual-send shim.
declare function harden<T>(value: T): T;
declare const HandledPromise: any;
declare const Compartment: any;
declare const assert: any;
