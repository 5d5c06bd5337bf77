// Before `npm test`: the dashboard's browser tests drive Debian's Chromium (playwright-core downloads no
// browser here). Installs it with apt-get where it is missing and this runs as root; otherwise says how.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(path)) {
  if (process.getuid?.() !== 0) {
    console.error(`Chromium is not at ${path}: install Debian's chromium (sudo apt-get install chromium) or set CHROMIUM_PATH`);
    process.exit(1);
  }
  console.error(`installing Debian's chromium for the dashboard's browser tests (${path} is missing)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (!existsSync(path)) {
    console.error(`apt-get installed chromium, but not at ${path}: set CHROMIUM_PATH`);
    process.exit(1);
  }
}
