/** magicbox's public API. Everything else under src/ is internal and may change. */
export * from './backend.ts';
export * from './scg/spec.ts';
