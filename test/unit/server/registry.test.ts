// Registry invariants (after github-mcp-server): names, texts, flat schemas, annotations derived from tiers.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { selectTools } from '../../../src/server/registry.js';
import { deriveAnnotations } from '../../../src/tools/define-tool.js';
import { allTools } from '../../../src/tools/index.js';
import { tierRank } from '../../../src/policy/tiers.js';

/** Persistent shell tools (exec tier), when present. */
const SHELL_TOOLS = allTools.filter((t) => t.group === 'shell').map((t) => t.name);

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
    const names = (tier: 'read' | 'write' | 'exec' | 'sudo') => selectTools(allTools, { tier }).map((t) => t.name);
    expect(names('read')).toEqual([
      'ssh_list_hosts', 'ssh_ping_host', 'ssh_get_host_info', 'ssh_check_host',
      'ssh_list_directory', 'ssh_get_file_info', 'ssh_read_file', 'ssh_find_files', 'ssh_hash_file', 'ssh_diff_files', 'ssh_download_file',
      'ssh_run_template', 'ssh_read_output', 'ssh_get_job', 'ssh_list_jobs',
    ]);
    const write = [
      'ssh_write_file', 'ssh_edit_file', 'ssh_patch_file', 'ssh_create_directory', 'ssh_remove_path', 'ssh_copy_path', 'ssh_move_path',
      'ssh_upload_file', 'ssh_transfer_file',
    ];
    expect(names('write').filter((n) => !names('read').includes(n))).toEqual(write);
    expect(names('exec').filter((n) => !names('write').includes(n))).toEqual(['ssh_exec', 'ssh_broadcast', 'ssh_start_job', 'ssh_cancel_job', ...SHELL_TOOLS]);
    expect(names('sudo').filter((n) => !names('exec').includes(n))).toEqual(['ssh_sudo_exec', 'ssh_sudo_read_file', 'ssh_sudo_write_file']);
  });

  it('groups filter tools', () => {
    expect(selectTools(allTools, { tier: 'exec', groups: ['hosts'] }).map((t) => t.name)).toEqual(['ssh_list_hosts', 'ssh_ping_host', 'ssh_get_host_info', 'ssh_check_host']);
  });
});
