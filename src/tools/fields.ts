// Field schemas shared by several tools, so a parameter means the same thing everywhere.
import { z } from 'zod';

export const hostAlias = z.string().min(1).max(255).describe('Host alias, as listed by ssh_list_hosts.');

export const remotePath = z
  .string()
  .min(1)
  .max(4096)
  .describe('Absolute POSIX path on the host. It must lie inside the host\'s allowed roots, if any are configured.');

/** Output fields of a command that ran (the execa shape). */
export const execResultShape = {
  exit_code: z.number().int().nullable().describe('Exit status; null when the command was killed by a signal.'),
  signal: z.string().nullable().describe('Signal name that ended the command, if any.'),
  stdout: z.string(),
  stderr: z.string(),
  timed_out: z.boolean(),
  truncated: z.boolean().describe('True when output went past the cap: the head and tail are kept, with a marker between them.'),
  duration_ms: z.number().int(),
  stdout_bytes: z.number().int().describe('Bytes the command wrote to stdout in all, kept or not.'),
  stderr_bytes: z.number().int(),
  output_id: z
    .string()
    .nullable()
    .describe('When output went past the cap: the id of the full output kept by sshgate; page or grep it with ssh_read_output.'),
};
