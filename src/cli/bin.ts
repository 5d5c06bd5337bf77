#!/usr/bin/env node
// The `ringbus` executable (package.json "bin"); the commands live in main.ts.
import { main } from './main.js';

// `ringbus dlq list | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv.slice(2));
