// Writes schema/experiment.schema.json, the published JSON Schema of experiment files, from the zod schema.
import { writeFileSync } from 'node:fs';
import { experimentJsonSchema } from '../src/config/experiment.js';

writeFileSync(new URL('../schema/experiment.schema.json', import.meta.url), `${JSON.stringify(experimentJsonSchema(), null, 2)}\n`);
