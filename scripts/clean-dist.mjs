#!/usr/bin/env node
// Empties dist/ before tsc writes it: a module removed from src/ must not live on in dist/ (or in a packed tarball).
import { rmSync } from 'node:fs';
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
