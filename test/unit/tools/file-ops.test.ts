// The pure text work of ssh_edit_file, ssh_patch_file and ssh_diff_files.
import { createPatch } from 'diff';
import { describe, expect, it } from 'vitest';
import { SshgateError } from '../../../src/errors.js';
import { applyEdits, applyUnifiedPatch, unifiedDiff } from '../../../src/tools/file-ops.js';

function failure(fn: () => unknown): SshgateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SshgateError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('applyEdits', () => {
  const text = 'server {\n  listen 80;\n  root /var/www;\n}\nserver {\n  listen 81;\n}\n';

  it('applies edits in order, each to the text the previous one left', () => {
    const out = applyEdits(text, [
      { old_text: 'listen 80;', new_text: 'listen 8080;' },
      { old_text: 'listen 8080;\n  root', new_text: 'listen 8080;\n  index index.html;\n  root' },
    ]);
    expect(out.text).toBe('server {\n  listen 8080;\n  index index.html;\n  root /var/www;\n}\nserver {\n  listen 81;\n}\n');
    expect(out.replacements).toEqual([1, 1]);
  });

  it('refuses text that occurs more than once, naming the lines', () => {
    const e = failure(() => applyEdits(text, [{ old_text: 'server {', new_text: 'http {' }]));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('edits[0]: old_text occurs 2 times (lines 1, 5)');
  });

  it('counts overlapping occurrences as more than one', () => {
    expect(failure(() => applyEdits('aaa', [{ old_text: 'aa', new_text: 'b' }])).message).toContain('occurs 2 times');
  });

  it('replaces every occurrence with replace_all', () => {
    const out = applyEdits(text, [{ old_text: 'server {', new_text: 'http {', replace_all: true }]);
    expect(out.text.match(/http \{/gu)?.length).toBe(2);
    expect(out.replacements).toEqual([2]);
  });

  it('is whitespace-exact, and says where text with other whitespace is', () => {
    const e = failure(() => applyEdits(text, [{ old_text: 'listen  80;', new_text: 'x' }]));
    expect(e.message).toContain('edits[0]: old_text was not found');
    expect(e.message).toContain('line 2');
  });

  it('names the failing edit and applies nothing when a later edit fails', () => {
    const e = failure(() => applyEdits(text, [{ old_text: 'listen 80;', new_text: 'listen 8080;' }, { old_text: 'listen 80;', new_text: 'y' }]));
    expect(e.message).toContain('edits[1] (applied after the edits before it): old_text was not found');
  });

  it('keeps $& and $1 in new_text literal', () => {
    expect(applyEdits('a=1', [{ old_text: '1', new_text: '$&$1$$' }]).text).toBe('a=$&$1$$');
  });

  it('refuses an empty old_text', () => {
    expect(failure(() => applyEdits('x', [{ old_text: '', new_text: 'y' }])).message).toContain('edits[0].old_text is empty');
  });
});

describe('applyUnifiedPatch', () => {
  const before = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
  const after = before.replace('line 3\n', 'line three\n').replace('line 25\n', 'line 25\nline 25.5\n');
  const patch = createPatch('app.conf', before, after);

  it('applies a patch made by diff -u style tools', () => {
    expect(applyUnifiedPatch(before, patch)).toEqual({ text: after, hunks: 2 });
  });

  it('applies at an offset when lines were added above the hunk', () => {
    const shifted = `header\n${before}`;
    expect(applyUnifiedPatch(shifted, patch).text).toBe(`header\n${after}`);
  });

  it('refuses a hunk that does not apply, naming the hunk, its header and the line that differs', () => {
    const changed = before.replace('line 24\n', 'line twenty-four\n');
    const e = failure(() => applyUnifiedPatch(changed, patch));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/hunk 2 of 2 \(@@ -\d+,\d+ \+\d+,\d+ @@\) does not apply: line 24 of the file is "line twenty-four", but the hunk expects a context line "line 24"/u);
    expect(e.message).toContain('nothing was written');
  });

  it('says when the patch looks applied already', () => {
    expect(failure(() => applyUnifiedPatch(after, patch)).message).toContain('already');
  });

  it('refuses a patch with no hunk, or for several files', () => {
    expect(failure(() => applyUnifiedPatch(before, 'just text\n')).message).toContain('holds no hunk');
    const two = `${createPatch('a', 'x\n', 'y\n')}${createPatch('b', 'x\n', 'z\n')}`;
    expect(failure(() => applyUnifiedPatch('x\n', two)).message).toContain('changes 2 files');
  });
});

describe('unifiedDiff', () => {
  it('counts additions and deletions and is empty for equal texts', () => {
    const d = unifiedDiff('a', 'b', 'x\ny\n', 'x\nz\nw\n', 3);
    expect(d?.additions).toBe(2);
    expect(d?.deletions).toBe(1);
    expect(d?.diff).toContain('@@ -1,2 +1,3 @@');
    expect(unifiedDiff('a', 'b', 'same\n', 'same\n', 3)?.diff).toBe('');
  });
});
