#!/usr/bin/env node
// The `coffer` command. The TypeScript sources are compiled to dist/ by `npm install`.
import { main } from '../dist/src/cli/main.js';

await main();
