/** The package's version, read once from the package.json beside the compiled tree. */
import { readFileSync } from 'node:fs';

const packageJson = new URL('../../package.json', import.meta.url);
export const VERSION: string = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
