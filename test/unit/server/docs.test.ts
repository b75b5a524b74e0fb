// The generated docs must match the definitions: run `npm run docs:gen` after changing a tool, the config schema or an error code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigDoc, renderErrorsDoc, renderReadmeTable, renderToolsDoc } from '../../../src/server/docs.js';
import { allTools } from '../../../src/tools/index.js';
import { ERROR_CATALOG } from '../../../src/errors.js';

const root = join(import.meta.dirname, '..', '..', '..');
const read = (p: string): string => readFileSync(join(root, p), 'utf8');

describe('generated docs are up to date (npm run docs:gen)', () => {
  it('docs/tools.md', () => {
    expect(read('docs/tools.md')).toBe(renderToolsDoc(allTools));
  });
  it('docs/configuration.md', () => {
    expect(read('docs/configuration.md')).toBe(renderConfigDoc());
  });
  it('docs/errors.md lists every error code', () => {
    expect(read('docs/errors.md')).toBe(renderErrorsDoc());
    for (const code of Object.keys(ERROR_CATALOG)) expect(read('docs/errors.md')).toContain(`\`${code}\``);
  });
  it('the README tool table', () => {
    expect(read('README.md')).toContain(renderReadmeTable(allTools));
  });
});
