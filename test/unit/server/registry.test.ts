// Registry invariants (after github-mcp-server): names, texts, flat schemas, annotations derived from tiers.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { selectTools } from '../../../src/server/registry.js';
import { deriveAnnotations } from '../../../src/tools/define-tool.js';
import { allTools } from '../../../src/tools/index.js';
import { tierRank } from '../../../src/policy/tiers.js';

describe('tool registry invariants', () => {
  it.each(allTools.map((t) => [t.name, t] as const))('%s has a unique ssh_ name, a title, a description and a flat object input', (_name, tool) => {
    expect(tool.name).toMatch(/^ssh_[a-z_]+$/u);
    expect(allTools.filter((t) => t.name === tool.name)).toHaveLength(1);
    expect(tool.title.length).toBeGreaterThan(3);
    expect(tool.description.length).toBeGreaterThan(40);
    const schema = z.toJSONSchema(tool.input) as { type: string; anyOf?: unknown };
    expect(schema.type).toBe('object');
    expect(schema.anyOf).toBeUndefined();
  });

  it.each(allTools.map((t) => [t.name, t] as const))('%s: readOnlyHint iff tier read; destructive implies tier >= write', (_name, tool) => {
    const a = deriveAnnotations(tool);
    expect(a.readOnlyHint).toBe(tool.tier === 'read');
    if (tool.effects.destructive) expect(tierRank(tool.tier)).toBeGreaterThanOrEqual(tierRank('write'));
    expect(a.openWorldHint).toBe(true);
  });

  it('the default tool set at each tier is pinned', () => {
    const names = (tier: 'read' | 'write' | 'exec') => selectTools(allTools, { tier }).map((t) => t.name);
    expect(names('read')).toEqual(['ssh_list_hosts', 'ssh_ping_host', 'ssh_get_host_info', 'ssh_list_directory', 'ssh_get_file_info', 'ssh_read_file']);
    expect(names('write')).toEqual([...names('read'), 'ssh_write_file']);
    expect(names('exec')).toEqual([...names('write'), 'ssh_exec']);
  });

  it('groups filter tools', () => {
    expect(selectTools(allTools, { tier: 'exec', groups: ['hosts'] }).map((t) => t.group)).toEqual(['hosts', 'hosts', 'hosts']);
  });
});
