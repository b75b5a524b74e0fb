// Field schemas shared by several tools, so a parameter means the same thing everywhere.
import { z } from 'zod';

export const hostAlias = z.string().min(1).max(255).describe('Host alias, as listed by ssh_list_hosts.');

export const remotePath = z
  .string()
  .min(1)
  .max(4096)
  .describe('Absolute POSIX path on the host. It must lie inside the host\'s allowed roots, if any are configured.');

/** A sha256 digest in hex (upper or lower case), e.g. `expected_sha256`. */
export const sha256Field = z.string().regex(/^[0-9a-fA-F]{64}$/u, 'a sha256 in hex');

/** Permission bits in octal, 3 or 4 digits with an optional leading 0 (`644`, `0755`, `2775`). */
export const octalMode = z.string().regex(/^0?[0-7]{3,4}$/u, 'an octal mode such as 0644');

/** Input fields choosing what part of a file a read returns (ssh_read_file, ssh_sudo_read_file). */
export const readRangeShape = {
  start_line: z.number().int().min(1).optional().describe('First line to return (1-based).'),
  line_count: z.number().int().min(1).optional().describe('Number of lines to return.'),
  offset: z.number().int().min(0).optional().describe('Byte offset to start at; not with start_line or line_count.'),
  max_bytes: z.number().int().min(1).optional().describe('Cap on bytes returned (default and ceiling: the server\'s limits.max_read_bytes).'),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
};

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
