// POSIX shell quoting: turns any string into exactly one shell word.

/**
 * Quotes `value` as one POSIX shell word: plain words are returned unchanged, anything else is put in single
 * quotes with each `'` written as `'\''` (POSIX.1-2017 XCU 2.2.2: nothing is special inside single quotes).
 */
export function shellQuote(value: string): string {
  if (value !== '' && /^[\w@%+=:,./-]+$/u.test(value)) return value;
  return `'${value.replace(/'/gu, `'\\''`)}'`;
}
