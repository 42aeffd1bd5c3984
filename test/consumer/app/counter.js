// A durable counter: the contract the consumer check installs.
import { provideKindHandle, defineDurableKind, provideDurableMapStore } from '@quickvat/vat-data';

export const defineInstallationKinds = (installationBaggage) => {
  const makeCounter = defineDurableKind(provideKindHandle(installationBaggage, 'Counter'), (start = 0n) => ({ count: start }), {
    increment({ state }, by = 1n) { state.count += by; return state.count; },
    read({ state }) { return state.count; },
  });
  return (instanceBaggage) => {
    const counters = provideDurableMapStore(instanceBaggage, 'counters');
    const makePublicFacet = defineDurableKind(provideKindHandle(instanceBaggage, 'PublicFacet'), () => ({}), {
      makeCounter(_, name, start) { const c = makeCounter(start); counters.init(name, c); return c; },
    });
    return () => ({ publicFacet: makePublicFacet() });
  };
};
