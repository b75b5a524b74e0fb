// The two stream parsers of shell sessions: the end-marker scanner (posix) and the one-line terminal model (cli PTY).
import { describe, expect, it } from 'vitest';
import { MarkerScanner, TerminalLines } from '../../../src/ssh/shell-session.js';

function scan(chunks: string[]): { passed: string; match: string[] | null; rest: string } {
  let passed = '';
  // eslint-disable-next-line no-control-regex -- the marker is framed by record separators on purpose.
  const scanner = new MarkerScanner('\n\x1eEabc:', /\n\x1eEabc:(\d+):([^\x1e]*)\x1e\n/u, (chunk) => {
    passed += chunk.toString('latin1');
  });
  for (const c of chunks) scanner.push(Buffer.from(c, 'latin1'));
  if (!scanner.found) scanner.flush();
  return { passed, match: scanner.match === null ? null : [...scanner.match], rest: scanner.rest.toString('latin1') };
}

describe('MarkerScanner', () => {
  it('finds the marker in one chunk and passes on exactly what came before it', () => {
    expect(scan(['out\n\n\x1eEabc:3:/tmp\x1e\nafter'])).toEqual({ passed: 'out\n', match: ['\n\x1eEabc:3:/tmp\x1e\n', '3', '/tmp'], rest: 'after' });
  });

  it.each([1, 2, 3, 5, 7])('finds a marker split into chunks of %i bytes', (size) => {
    const text = 'hello\nworld\n\n\x1eEabc:0:/\x1e\n';
    const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'gu')) ?? [];
    const out = scan(chunks);
    expect(out.passed).toBe('hello\nworld\n');
    expect(out.match?.[1]).toBe('0');
  });

  it('is not fooled by a marker with another token, and passes it on as output', () => {
    const out = scan(['a\n\x1eEabd:0:/\x1e\n', 'b\n\x1eEab', 'c:9:/x\x1e\n']);
    expect(out.passed).toBe('a\n\x1eEabd:0:/\x1e\nb');
    expect(out.match?.[1]).toBe('9');
  });

  it('gives back what it held when the stream ends without a marker', () => {
    expect(scan(['bye\n'])).toEqual({ passed: 'bye\n', match: null, rest: '' });
    expect(scan(['x\n\x1eEabc:12'])).toEqual({ passed: 'x\n\x1eEabc:12', match: null, rest: '' });
  });

  it('stops holding back a started marker that grows past the longest one', () => {
    const long = `\n\x1eEabc:0:${'p'.repeat(9000)}`;
    expect(scan([long]).passed).toBe(long);
  });

  it('keeps bytes that arrive after the marker apart', () => {
    let passed = '';
    const scanner = new MarkerScanner('#', /#\n/u, (c) => (passed += c.toString()));
    scanner.push(Buffer.from('x#\ny'));
    scanner.push(Buffer.from('z'));
    expect([passed, scanner.rest.toString()]).toEqual(['x', 'yz']);
  });
});

function draw(chunks: (string | Buffer)[]): { lines: string[]; current: string } {
  const lines: string[] = [];
  const screen = new TerminalLines((line) => lines.push(line));
  for (const c of chunks) screen.write(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return { lines, current: screen.current() };
}

describe('TerminalLines', () => {
  it('ends lines at LF, CRLF and CR CR LF alike, and keeps the unfinished line as current', () => {
    expect(draw(['a\r\nb\nc\r\r\nrouter#'])).toEqual({ lines: ['a', 'b', 'c'], current: 'router#' });
  });

  it('joins a CRLF split between chunks', () => {
    expect(draw(['one\r', '\ntwo\r', '', '\n'])).toEqual({ lines: ['one', 'two'], current: '' });
  });

  it('draws over a line after a lone CR and after backspaces, dropping the blanks that erased it', () => {
    expect(draw(['progress 10%\rprogress 100%\r\n'])).toEqual({ lines: ['progress 100%'], current: '' });
    expect(draw([' --More-- ', '\b\b\b\b\b\b\b\b\b\b          \b\b\b\b\b\b\b\b\b\bnext line\r\n']).lines).toEqual(['next line']);
  });

  it('keeps trailing blanks of lines nothing was drawn over', () => {
    expect(draw(['padded   \r\n']).lines).toEqual(['padded   ']);
  });

  it('applies erase-in-line and drops other escape sequences, even split between chunks', () => {
    expect(draw(['\x1b[1mbold\x1b[0m text\r\n'])).toEqual({ lines: ['bold text'], current: '' });
    expect(draw(['abcdef\x1b[3D\x1b', '[K\r\n']).lines).toEqual(['abc']);
    expect(draw(['abcdef\x1b[D\x1b[DX\x1b[2GY\r\n']).lines).toEqual(['aYcdXf']);
    expect(draw(['abc\rX\x1b[K\r\n']).lines).toEqual(['X']);
    expect(draw(['abc\x1b[2K\r\n']).lines).toEqual(['']);
    expect(draw(['abcd\b\b\x1b[1K\r\n']).lines).toEqual(['   d']);
    expect(draw(['\x1b]0;title\x07prompt>'])).toEqual({ lines: [], current: 'prompt>' });
    expect(draw(['\x1b(Bplain\r\n']).lines).toEqual(['plain']);
  });

  it('drops a lone ESC and other control characters but keeps tabs', () => {
    expect(draw(['a\x1b\x07b\tc\x00\r\n']).lines).toEqual(['ab\tc']);
  });

  it('decodes UTF-8 split between chunks', () => {
    const bytes = Buffer.from('café ✓\n', 'utf8');
    expect(draw([bytes.subarray(0, 4), bytes.subarray(4, 7), bytes.subarray(7)]).lines).toEqual(['café ✓']);
  });

  it('pads with blanks when the cursor moved past the end of the line', () => {
    expect(draw(['ab\x1b[3Cc\r\n']).lines).toEqual(['ab   c']);
    expect(draw(['ab\x1b[5C', '\rab\x1b[K', '\r\n']).lines).toEqual(['ab']);
  });

  it('forgets the current line on discardLine', () => {
    const lines: string[] = [];
    const screen = new TerminalLines((line) => lines.push(line));
    screen.write(Buffer.from('router#'));
    screen.discardLine();
    screen.write(Buffer.from('show clock\r\n'));
    expect(lines).toEqual(['show clock']);
  });
});
