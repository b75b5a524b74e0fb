// How a failed `client.exec` callback is read: retry only when nothing can have run.
import { Client } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { isSshgateError } from '../../../src/errors.js';
import { classifyExecError } from '../../../src/ssh/exec.js';
import { ChannelOpenError } from '../../../src/ssh/pool.js';

// The client is never connected nor touched by the classifier; only `alive` matters.
const conn = (alive: boolean): { client: Client; alive: boolean } => ({ client: new Client(), alive });

describe('classifyExecError', () => {
  it('a lost connection after the exec request was sent is CONNECTION_LOST, never a retryable open failure', () => {
    const err = classifyExecError(new Error('Unable to exec'), conn(false));
    expect(err).not.toBeInstanceOf(ChannelOpenError);
    expect(isSshgateError(err) && err.code).toBe('CONNECTION_LOST');
    expect(err.message).toMatch(/may have started on the host, and its exit status is unknown/u);
  });

  it('an exec request refused on a live connection is REMOTE_FAILURE', () => {
    const err = classifyExecError(new Error('Unable to exec'), conn(true));
    expect(isSshgateError(err) && err.code).toBe('REMOTE_FAILURE');
  });

  it('a channel that never opened on a dead connection stays a "dead" open error (nothing ran, safe to retry)', () => {
    const err = classifyExecError(new Error('No response from server'), conn(false));
    expect(err).toBeInstanceOf(ChannelOpenError);
    expect(err).toMatchObject({ kind: 'dead' });
  });

  it('a channel refused by MaxSessions stays a "refused" open error', () => {
    const err = classifyExecError(new Error('(SSH) Channel open failure: open failed'), conn(true));
    expect(err).toBeInstanceOf(ChannelOpenError);
    expect(err).toMatchObject({ kind: 'refused' });
  });
});
