// Writes ringbus.config.schema.json from the option table (npm run schema); a test checks it is current.
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../src/config/json_schema.js';

writeFileSync(new URL('../ringbus.config.schema.json', import.meta.url), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
