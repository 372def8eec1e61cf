#!/usr/bin/env node
// Entry point of the `magicbox` command: runs the TypeScript CLI through tsx's loader,
// so that the package needs no build step (`npm ci` then `npx magicbox ...`).
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
