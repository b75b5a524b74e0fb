// Writes docs/tools.md, docs/configuration.md, docs/errors.md and the README tool table from the built definitions.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { README_BEGIN, README_END, renderConfigDoc, renderErrorsDoc, renderReadmeTable, renderToolsDoc } from '../dist/server/docs.js';
import { allTools } from '../dist/tools/index.js';

const root = join(import.meta.dirname, '..');
writeFileSync(join(root, 'docs', 'tools.md'), renderToolsDoc(allTools));
writeFileSync(join(root, 'docs', 'configuration.md'), renderConfigDoc());
writeFileSync(join(root, 'docs', 'errors.md'), renderErrorsDoc());
const readmePath = join(root, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const start = readme.indexOf(README_BEGIN);
const end = readme.indexOf(README_END);
if (start < 0 || end < 0) throw new Error('README.md lacks the tools markers');
writeFileSync(readmePath, readme.slice(0, start) + renderReadmeTable(allTools) + readme.slice(end + README_END.length));
process.stderr.write('docs regenerated\n');
