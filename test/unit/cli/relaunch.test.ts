// When and how the bin entry relaunches Node with sshgate's runtime flags.
import { describe, expect, it } from 'vitest';
import { relaunchPlan, type RelaunchInput } from '../../../src/cli/relaunch.js';

const base: RelaunchInput = {
  execPath: '/usr/bin/node',
  execArgv: [],
  argv: ['/usr/bin/node', '/opt/sshgate/dist/main.js', 'serve', '--config', '/etc/sshgate.yaml'],
  env: { HOME: '/home/op', PATH: '/usr/bin' },
  platform: 'linux',
  canExecve: true,
};

describe('relaunchPlan', () => {
  it('adds the GC flag in front of Node\'s own flags and keeps the script and its arguments in order', () => {
    const plan = relaunchPlan({ ...base, execArgv: ['--enable-source-maps'] });
    expect(plan?.args).toEqual(['/usr/bin/node', '--single-threaded-gc', '--enable-source-maps', '/opt/sshgate/dist/main.js', 'serve', '--config', '/etc/sshgate.yaml']);
  });

  it('marks the new process so that it can never relaunch again (no exec loop)', () => {
    const plan = relaunchPlan(base);
    expect(plan?.env).toEqual({ HOME: '/home/op', PATH: '/usr/bin', SSHGATE_RELAUNCHED: '1' });
    expect(relaunchPlan({ ...base, env: plan?.env ?? {} })).toBeNull();
  });

  it('does nothing when the flag is already there', () => {
    expect(relaunchPlan({ ...base, execArgv: ['--single-threaded-gc'] })).toBeNull();
  });

  it('does nothing on Windows or without process.execve (Node < 22.15)', () => {
    expect(relaunchPlan({ ...base, platform: 'win32' })).toBeNull();
    expect(relaunchPlan({ ...base, canExecve: false })).toBeNull();
  });

  it('SSHGATE_PARALLEL_GC=1 opts out', () => {
    expect(relaunchPlan({ ...base, env: { ...base.env, SSHGATE_PARALLEL_GC: '1' } })).toBeNull();
  });
});
