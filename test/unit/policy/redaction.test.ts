import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MIN_SECRET_LENGTH,
  REDACTION_KINDS,
  Redactor,
  stripTerminalControls,
} from '../../../src/policy/redaction.js';

// Fake credentials are assembled at run time so that secret scanners do not flag this file.
const PK = ['PRIVATE', 'KEY'].join(' ');
const chars = (n: number, alphabet = 'a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ'): string =>
  alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
const B64 = 'MIIEowIBAAKCAQEAx4R9sGJt0a2b3c4d5e6f7g8h9i0jKlMnOpQrStUvWxYz+/AB';
const pem = (label: string, body: string): string =>
  `-----BEGIN ${label}${PK}-----\n${body}\n-----END ${label}${PK}-----`;
const pemRedacted = (label: string, marker = '<redacted:private-key>'): string =>
  `-----BEGIN ${label}${PK}-----\n${marker}\n-----END ${label}${PK}-----`;

const AKIA = 'AKIA' + 'IOSFODNN7EXAMPLE';
const ASIA = 'ASIA' + 'Y3FDSNDKFKSIDJSW';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/' + 'bPxRfiCYEXAMPLEKEY';
const GHP = 'ghp' + '_' + chars(36);
const GHO = 'gho' + '_' + chars(36);
const GHS = 'ghs' + '_' + chars(36);
const GH_PAT = 'github' + '_pat_' + chars(22) + '_' + chars(59);
const GLPAT = 'glpat' + '-' + chars(20);
const XOXB = 'xoxb' + '-' + '2400000000-2400000001-' + chars(24);
const XOXP = 'xoxp' + '-' + '2400000000-' + chars(24);
const STRIPE = 'sk' + '_live_' + chars(24);
const STRIPE_RK = 'rk' + '_test_' + chars(24);
const ANTHROPIC = 'sk' + '-ant-api03-' + chars(40) + '-' + chars(20) + 'AA';
const OPENAI = 'sk' + '-proj-' + chars(48);
const OPENAI_LEGACY = 'sk' + '-' + chars(48);
const JWT =
  'eyJ' + 'hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9' + '.' + 'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ' + '.' +
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const JWT_UNSIGNED = 'eyJ' + 'hbGciOiJub25lIn0' + '.' + 'eyJzdWIiOiJhZG1pbiJ9' + '.';

type Case = readonly [name: string, input: string, expected: string];

/** One table per rule; each row is named after what it catches. */
const catches: Record<string, readonly Case[]> = {
  'private keys': [
    ['a PEM RSA key', pem('RSA ', `${B64}\n${B64}\nabc=`), pemRedacted('RSA ')],
    ['an OpenSSH key', pem('OPENSSH ', `b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n${B64}`), pemRedacted('OPENSSH ')],
    ['a PKCS#8 key', pem('', B64), pemRedacted('')],
    ['an EC key with CRLF line ends', pem('EC ', `${B64}\r\n${B64}`).replaceAll('\n', '\r\n'), pemRedacted('EC ').replaceAll('\n', '\r\n')],
    [
      'an encrypted PEM key with its headers',
      pem('RSA ', `Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F2A9C1D8E7B6A5F\n\n${B64}`),
      pemRedacted('RSA '),
    ],
    ['an encrypted PKCS#8 key', pem('ENCRYPTED ', B64), pemRedacted('ENCRYPTED ')],
    [
      'a PGP private key block',
      `-----BEGIN PGP ${PK} BLOCK-----\n\nlQOYBF${B64}\n=abcd\n-----END PGP ${PK} BLOCK-----`,
      `-----BEGIN PGP ${PK} BLOCK-----\n\n<redacted:private-key>\n-----END PGP ${PK} BLOCK-----`,
    ],
    [
      'an ssh.com SSH2 key',
      `---- BEGIN SSH2 ENCRYPTED ${PK} ----\nComment: "rsa-key"\n${B64}\n---- END SSH2 ENCRYPTED ${PK} ----`,
      `---- BEGIN SSH2 ENCRYPTED ${PK} ----\n<redacted:private-key>\n---- END SSH2 ENCRYPTED ${PK} ----`,
    ],
    [
      'a key block cut off by output truncation',
      `$ cat id_rsa\n-----BEGIN RSA ${PK}-----\n${B64}\n${B64.slice(0, 20)}`,
      `$ cat id_rsa\n-----BEGIN RSA ${PK}-----\n<redacted:private-key>`,
    ],
    [
      'a key inside surrounding output',
      `before\n${pem('OPENSSH ', B64)}\nafter`,
      `before\n${pemRedacted('OPENSSH ')}\nafter`,
    ],
    [
      'the private lines of a PuTTY key file',
      'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: eddsa-key-20250312\nPublic-Lines: 2\n' +
        `AAAAC3NzaC1lZDI1NTE5AAAAIA\nPZl0cQ9==\nPrivate-Lines: 2\n${B64}\nAAAAIEpZ==\nPrivate-MAC: 3f2a9c1d8e7b`,
      'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: eddsa-key-20250312\nPublic-Lines: 2\n' +
        'AAAAC3NzaC1lZDI1NTE5AAAAIA\nPZl0cQ9==\nPrivate-Lines: 2\n<redacted:private-key>\nPrivate-MAC: 3f2a9c1d8e7b',
    ],
    [
      'a GCP service-account private_key',
      `{\n  "type": "service_account",\n  "private_key": "-----BEGIN ${PK}-----\\n${B64}\\n-----END ${PK}-----\\n",\n  "client_email": "sa@proj.iam.gserviceaccount.com"\n}`,
      '{\n  "type": "service_account",\n  "private_key": "<redacted:private-key>",\n  "client_email": "sa@proj.iam.gserviceaccount.com"\n}',
    ],
  ],
  'cloud keys': [
    ['an AWS access key id in prose', `using key ${AKIA} for s3`, 'using key <redacted:aws-access-key> for s3'],
    ['an AWS temporary access key id', `"AccessKeyId": "${ASIA}"`, '"AccessKeyId": "<redacted:aws-access-key>"'],
    [
      'an AWS credentials file',
      `[default]\naws_access_key_id = ${AKIA}\naws_secret_access_key = ${AWS_SECRET}\n`,
      '[default]\naws_access_key_id = <redacted:aws-access-key>\naws_secret_access_key = <redacted:aws-secret-key>\n',
    ],
    ['an exported AWS secret key', `export AWS_SECRET_ACCESS_KEY=${AWS_SECRET}`, 'export AWS_SECRET_ACCESS_KEY=<redacted:aws-secret-key>'],
    [
      'an Azure storage connection string',
      'DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net',
      'DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=<redacted:azure-account-key>;EndpointSuffix=core.windows.net',
    ],
    [
      'an Azure Service Bus SharedAccessKey',
      'Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=q5Vt3xkP0bEw9oRn2Jd8Gf1Ls7Hy4Zc6Ma0Ne3Qw9Ts=',
      'Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=<redacted:azure-account-key>',
    ],
  ],
  'tokens': [
    ['a GitHub personal access token', `GITHUB_TOKEN ${GHP} set`, 'GITHUB_TOKEN <redacted:github-token> set'],
    ['a GitHub OAuth token', `oauth ${GHO}`, 'oauth <redacted:github-token>'],
    ['a GitHub app installation token', `x-access-token ${GHS}`, 'x-access-token <redacted:github-token>'],
    ['a fine-grained GitHub token', `${GH_PAT}\n`, '<redacted:github-token>\n'],
    ['a GitLab personal access token', `glab auth ${GLPAT}`, 'glab auth <redacted:gitlab-token>'],
    ['a Slack bot token', `SLACK ${XOXB}`, 'SLACK <redacted:slack-token>'],
    ['a Slack user token', `(${XOXP})`, '(<redacted:slack-token>)'],
    ['a Stripe live secret key', `stripe ${STRIPE}`, 'stripe <redacted:stripe-key>'],
    ['a Stripe restricted test key', `stripe ${STRIPE_RK}`, 'stripe <redacted:stripe-key>'],
    ['an Anthropic API key', `key ${ANTHROPIC}`, 'key <redacted:anthropic-key>'],
    ['an OpenAI project key', `key ${OPENAI}`, 'key <redacted:openai-key>'],
    ['a legacy OpenAI key', `key ${OPENAI_LEGACY}`, 'key <redacted:openai-key>'],
    ['a JWT', `session ${JWT} ok`, 'session <redacted:jwt> ok'],
    ['an unsigned JWT', `session ${JWT_UNSIGNED} ok`, 'session <redacted:jwt> ok'],
    ['an Authorization: Bearer header', `Authorization: Bearer ${'abc123'.repeat(4)}`, 'Authorization: Bearer <redacted:authorization>'],
    ['an Authorization: Basic header', '> Authorization: Basic dXNlcjpwYXNzd29yZA==', '> Authorization: Basic <redacted:authorization>'],
    [
      'an authorization header inside curl -H',
      `curl -H "Authorization: token ${'f00ba7'.repeat(4)}" https://api.example.com`,
      'curl -H "Authorization: token <redacted:authorization>" https://api.example.com',
    ],
    ['an HTTP/2 authorization header without a scheme', 'authorization: 9f3a1c77e2b4d6f8', 'authorization: <redacted:authorization>'],
    ['a Bearer token in a log line', `retrying with Bearer ${'Zx9'.repeat(8)}`, 'retrying with Bearer <redacted:bearer-token>'],
    ['a JWT sent as a Bearer token', `Authorization: Bearer ${JWT}`, 'Authorization: Bearer <redacted:jwt>'],
  ],
  'passwords in URLs': [
    [
      'a database URL',
      'DATABASE_URL=postgres://app:s3cr3t@db.internal:5432/app',
      'DATABASE_URL=postgres://app:<redacted:url-password>@db.internal:5432/app',
    ],
    ['a URL with an empty user', 'redis://:hunter2@cache:6379/0', 'redis://:<redacted:url-password>@cache:6379/0'],
    ['a password holding an @ (the last @ ends it)', 'https://bob:p@ss@git.example.com/x.git', 'https://bob:<redacted:url-password>@git.example.com/x.git'],
    [
      'a token used as a URL password',
      `https://oauth2:${GLPAT}@gitlab.example.com/group/repo.git`,
      'https://oauth2:<redacted:gitlab-token>@gitlab.example.com/group/repo.git',
    ],
  ],
  'key=value pairs': [
    ['password=value', 'login user=bob password=hunter2 retry=1', 'login user=bob password=<redacted:password> retry=1'],
    ['a double-quoted value with blanks', 'DB_PASSWORD="correct horse battery"', 'DB_PASSWORD="<redacted:password>"'],
    ['an escaped quote inside a double-quoted value', String.raw`password="a\"b" next`, 'password="<redacted:password>" next'],
    ['export KEY=value', "export API_KEY='abc123'", "export API_KEY='<redacted:api-key>'"],
    ['an unclosed quote', 'password="hunter2', 'password="<redacted:password>'],
    ['key = value with blanks (ini)', 'client_secret = 5f2b9e', 'client_secret = <redacted:secret>'],
    ['a query-string token', 'GET /cb?access_token=abc123&state=xyz HTTP/1.1', 'GET /cb?access_token=<redacted:token>&state=xyz HTTP/1.1'],
    ['a connection-string password', 'Server=db;Database=app;User Id=sa;Password=Pa55w0rd;', 'Server=db;Database=app;User Id=sa;Password=<redacted:password>;'],
    ['an ODBC PWD that is not a path', 'UID=sa;PWD=Pa55w0rd;', 'UID=sa;PWD=<redacted:password>;'],
    ['a command-line flag', 'mysql --user=root --password=toor db', 'mysql --user=root --password=<redacted:password> db'],
    ['a Go assignment', 'passwd := "x9"', 'passwd := "<redacted:password>"'],
    ['a PHP array entry', "'db_password' => 'x9'", "'db_password' => '<redacted:password>'"],
    ['a systemd Environment line', 'Environment=DB_PASSWORD=xyz', 'Environment=DB_PASSWORD=<redacted:password>'],
    ['a passphrase', 'passphrase=open sesame', 'passphrase=<redacted:password> sesame'],
    ['an access key pair', 'access_key = AbCdEf', 'access_key = <redacted:access-key>'],
    ['a session token', 'aws_session_token = IQoJb3JpZ2luX2Vj', 'aws_session_token = <redacted:token>'],
    ['a private key setting', 'private_key=deadbeef', 'private_key=<redacted:private-key>'],
    ['a JSON pair', '{"user":"bob","client_secret":"5f2b9e"}', '{"user":"bob","client_secret":"<redacted:secret>"}'],
    ['a JSON number', '{"pin_token": 123456}', '{"pin_token": <redacted:token>}'],
    ['a Python dict repr', "{'token': 'abc', 'user': 'bob'}", "{'token': '<redacted:token>', 'user': 'bob'}"],
    ['a single-quoted JSON-style value', "'apiKey':'k-1'", "'apiKey':'<redacted:api-key>'"],
    ['a YAML pair', 'db:\n  password: hunter2 # rotate monthly\n  user: app', 'db:\n  password: <redacted:password>\n  user: app'],
    ['a YAML list item', '- secret: "x y"\n', '- secret: "<redacted:secret>"\n'],
    ['a single-quoted YAML value', "token: 'abc'", "token: '<redacted:token>'"],
    ['a YAML value with an unclosed quote', 'password: "abc', 'password: "<redacted:password>'],
    ['a commented-out YAML pair', '# password: old-one', '# password: <redacted:password>'],
    ['an API key header', 'X-Api-Key: 0f1e2d3c4b5a', 'X-Api-Key: <redacted:api-key>'],
    ['a header in curl -v output', '> x-auth-token: abc123\r\n', '> x-auth-token: <redacted:token>\r\n'],
  ],
};

function kindsOf(text: string): string[] {
  return [...text.matchAll(/<redacted:([a-z0-9-]+)>/g)].map((m) => m[1]!);
}

describe('Redactor: what each rule catches', () => {
  const redactor = new Redactor();
  for (const [group, cases] of Object.entries(catches)) {
    describe(group, () => {
      it.each(cases)('redacts %s', (_name, input, expected) => {
        const result = redactor.redact(input);
        expect(result.text).toBe(expected);
        expect(result.count).toBe(kindsOf(expected).length);
        expect(result.kinds).toEqual([...new Set(kindsOf(expected))].sort());
      });
    });
  }

  it('has a case for every kind it can report', () => {
    const seen = new Set(Object.values(catches).flatMap((cases) => cases.flatMap(([, , expected]) => kindsOf(expected))));
    seen.add('configured-secret'); // covered in its own block below
    expect([...REDACTION_KINDS].filter((kind) => !seen.has(kind))).toEqual([]);
  });

  it('keeps the text around each secret as it was', () => {
    const input = `line 1\nexport GITHUB_TOKEN=${GHP}\nline 3 password=x\n`;
    expect(redactor.redactText(input)).toBe('line 1\nexport GITHUB_TOKEN=<redacted:github-token>\nline 3 password=<redacted:password>\n');
  });

  it('unites overlapping matches into one marker named by the more specific rule', () => {
    const result = redactor.redact(`aws_access_key_id=${AKIA}`);
    expect(result).toEqual({ text: 'aws_access_key_id=<redacted:aws-access-key>', count: 1, kinds: ['aws-access-key'] });
  });

  it('reports distinct kinds sorted and counts every marker', () => {
    const result = redactor.redact(`password=a token=b password=c ${AKIA}`);
    expect(result.count).toBe(4);
    expect(result.kinds).toEqual(['aws-access-key', 'password', 'token']);
  });

  it('changes nothing when run over its own output', () => {
    const input = Object.values(catches).flatMap((cases) => cases.map(([, text]) => text)).join('\n');
    const once = redactor.redactText(input);
    expect(redactor.redact(once)).toEqual({ text: once, count: 0, kinds: [] });
    const digestOnce = redactor.redact(input, 'digest').text;
    expect(redactor.redact(digestOnce, 'digest').text).toBe(digestOnce);
  });

  it('strips terminal controls before matching, so colour codes cannot hide a pair', () => {
    expect(redactor.redactText('\x1b[01;31m\x1b[Kpassword\x1b[m\x1b[K=hunter2')).toBe('password=<redacted:password>');
  });
});

describe('Redactor: what it leaves alone', () => {
  const redactor = new Redactor();
  const fixtures = join(import.meta.dirname, '../../fixtures/redaction');

  it.each(readdirSync(fixtures).sort())('leaves the ordinary output in %s unchanged', (file) => {
    const text = readFileSync(join(fixtures, file), 'utf8');
    expect(redactor.redact(text)).toEqual({ text, count: 0, kinds: [] });
  });

  it.each([
    ['"password" in prose with no value', 'sshd[2240]: Failed password for invalid user admin from 1.2.3.4 port 22 ssh2'],
    ['"token:" in the middle of a log line', 'app[12]: invalid token: expired at 10:00'],
    ['a sha256: image digest', 'nginx@sha256:0a399eb16751829e1af26fea27b20c3ec28d7ab1fb72182879dcae1cca21206a'],
    ['an SSH key fingerprint', 'ED25519 SHA256:Xq3fZ0p1hL8mVwQn7yTkR2sA9bC4dE6fG8hJ0kL1mN2'],
    ['a git commit hash', 'commit 3f2a9c1d8e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b'],
    ['a shell working directory', 'PWD=/home/deploy\nOLDPWD=~/src'],
    ['a secret file reference', 'POSTGRES_PASSWORD_FILE=/run/secrets/db --token-auth-file=/etc/k8s/tokens.csv'],
    ['a token endpoint', 'token_url=https://auth.example.com/oauth/token'],
    ['a Kubernetes secret name', 'secretName: db-creds'],
    ['a comparison', 'if password == expected: pass\nif token != "": ok'],
    ['a key with no value', 'password:\npassword=\npassword: ""\napi_key=""'],
    ['a Rust path', 'token::Token::new()'],
    ['a Go-style message with a blank before the colon', 'failed for volume "default-token-x7k2p" : not found'],
    ['an Authorization header with no credentials', 'Authorization: Bearer\n'],
    ['prose after "authorization:"', 'may require authorization: server message: insufficient_scope'],
    ['"bearer" followed by a word', 'the Bearer authentication scheme'],
    ['an sk- name with no digit', 'package sk-learn-style-helpers-and-widgets'],
    ['a URL with a port but no credentials', 'http://localhost:8080/path?user=bob ssh://git@github.com:22/org/repo.git'],
    ['an identifier that merely contains AKIA', 'XAKIAIOSFODNN7EXAMPLEX'],
    ['a PEM public key and certificate', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----'],
    ['markers written earlier', 'password=<redacted:password> password: <redacted:sha256:0a1b2c3d len:7>'],
  ])('leaves %s', (_name, text) => {
    expect(redactor.redact(text)).toEqual({ text, count: 0, kinds: [] });
  });
});

describe('Redactor: configured secrets', () => {
  it('replaces every occurrence of a configured value', () => {
    const redactor = new Redactor({ secrets: ['Tr0ub4dor&3'] });
    expect(redactor.redactText('echo Tr0ub4dor&3 | sudo -S true; Tr0ub4dor&3')).toBe(
      'echo <redacted:configured-secret> | sudo -S true; <redacted:configured-secret>',
    );
  });

  it('replaces the percent-encoded form too', () => {
    const redactor = new Redactor({ secrets: ['p@ss word'] });
    expect(redactor.redactText('remote: https://x/?q=p%40ss%20word')).toBe('remote: https://x/?q=<redacted:configured-secret>');
  });

  it('accepts secrets added after construction', () => {
    const redactor = new Redactor();
    expect(redactor.redactText('key phrase: blue-moon-42')).toBe('key phrase: blue-moon-42');
    redactor.addSecret('blue-moon-42');
    expect(redactor.redactText('key phrase: blue-moon-42')).toBe('key phrase: <redacted:configured-secret>');
  });

  it(`ignores values shorter than ${MIN_SECRET_LENGTH} characters, which would shred ordinary output`, () => {
    const redactor = new Redactor({ secrets: ['abc', '', 'x'] });
    redactor.addSecret('no');
    expect(redactor.redact('abc no x')).toEqual({ text: 'abc no x', count: 0, kinds: [] });
    redactor.addSecret('abcd');
    expect(redactor.redactText('abcd')).toBe('<redacted:configured-secret>');
  });

  it('redacts back-to-back and overlapping configured secrets', () => {
    const redactor = new Redactor({ secrets: ['abcdef', 'defghi'] });
    expect(redactor.redact('xx abcdefghi abcdefabcdef')).toEqual({
      text: 'xx <redacted:configured-secret> <redacted:configured-secret><redacted:configured-secret>',
      count: 3,
      kinds: ['configured-secret'],
    });
  });

  it('names a configured secret found by a pattern rule after that rule', () => {
    const redactor = new Redactor({ secrets: ['hunter22'] });
    expect(redactor.redactText('password=hunter22 and hunter22')).toBe(
      'password=<redacted:password> and <redacted:configured-secret>',
    );
  });
});

describe('Redactor: digest markers', () => {
  const redactor = new Redactor({ secrets: ['sekrit-value'] });
  const MARKER = /<redacted:sha256:([0-9a-f]{8}) len:(\d+)>/g;
  const sha8 = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 8);

  it('writes the first 8 hex digits of the SHA-256 and the length of the value', () => {
    expect(redactor.redact('password=hunter2', 'digest')).toEqual({
      text: `password=<redacted:sha256:${sha8('hunter2')} len:7>`,
      count: 1,
      kinds: ['password'],
    });
  });

  it('gives the same secret the same marker and different secrets different markers', () => {
    const text = redactor.redact('a: password=alpha1\nb: token=alpha1\nc: secret=beta22\nsekrit-value', 'digest').text;
    const markers = [...text.matchAll(MARKER)].map((m) => m[0]);
    expect(markers).toHaveLength(4);
    expect(markers[0]).toBe(markers[1]);
    expect(new Set(markers).size).toBe(3);
    expect(markers[3]).toBe(`<redacted:sha256:${sha8('sekrit-value')} len:12>`);
  });

  it('counts the length in characters, not UTF-16 units or bytes', () => {
    const value = 'pässwörd€😀';
    expect(redactor.redactText(`x password=${value}`)).toBe('x password=<redacted:password>');
    expect(redactor.redact(`password=${value}`, 'digest').text).toBe(`password=<redacted:sha256:${sha8(value)} len:10>`);
  });

  it('keeps the structure of a config file', () => {
    const file = 'db:\n  host: db.internal\n  user: app\n  password: "hunter2"\napi:\n  token: abc123\n';
    expect(redactor.redact(file, 'digest').text).toBe(
      `db:\n  host: db.internal\n  user: app\n  password: "<redacted:sha256:${sha8('hunter2')} len:7>"\n` +
        `api:\n  token: <redacted:sha256:${sha8('abc123')} len:6>\n`,
    );
  });

  it('digests the body of a private key and keeps its BEGIN and END lines', () => {
    const body = `${B64}\n${B64}`;
    expect(redactor.redact(pem('OPENSSH ', body), 'digest').text).toBe(
      pemRedacted('OPENSSH ', `<redacted:sha256:${sha8(body)} len:${body.length}>`),
    );
  });
});

describe('Redactor.redactValue', () => {
  const redactor = new Redactor({ secrets: ['s3cr3t-pass'] });

  it('redacts every string in nested objects and arrays and leaves other values alone', () => {
    const date = new Date(0);
    const buffer = Buffer.from('password=x');
    const input = {
      tool: 'ssh_exec',
      args: { host: 'web1', command: `curl -H 'Authorization: Bearer ${JWT}' https://api` },
      output: ['ok', `login s3cr3t-pass`, { nested: [`key ${GHP}`, 42, true, null, undefined] }],
      at: date,
      raw: buffer,
      exit_code: 0,
    };
    const out = redactor.redactValue(input);
    expect(out).toEqual({
      tool: 'ssh_exec',
      args: { host: 'web1', command: "curl -H 'Authorization: Bearer <redacted:jwt>' https://api" },
      output: ['ok', 'login <redacted:configured-secret>', { nested: ['key <redacted:github-token>', 42, true, null, undefined] }],
      at: date,
      raw: buffer,
      exit_code: 0,
    });
    expect(out.at).toBe(date);
    expect(out.raw).toBe(buffer);
    expect(input.output[1]).toBe('login s3cr3t-pass');
  });

  it.each([
    ['password', { password: 'hunter2' }, { password: '<redacted:password>' }],
    ['apiKey', { apiKey: 'k-1' }, { apiKey: '<redacted:api-key>' }],
    ['client_secret', { client_secret: 'x' }, { client_secret: '<redacted:secret>' }],
    ['privateKey', { privateKey: 'x' }, { privateKey: '<redacted:private-key>' }],
    ['accessKey', { accessKey: 'x' }, { accessKey: '<redacted:access-key>' }],
    ['sessionToken', { sessionToken: 'x' }, { sessionToken: '<redacted:token>' }],
    ['passphrase', { passphrase: 'x y z' }, { passphrase: '<redacted:password>' }],
  ])('replaces the whole string under a %s key', (_key, input, expected) => {
    expect(redactor.redactValue(input)).toEqual(expected);
  });

  it.each([
    ['a file reference', { password_file: '/run/secrets/db' }],
    ['a working directory', { PWD: '/home/deploy' }],
    ['an empty string', { password: '' }],
    ['a marker', { password: '<redacted:password>' }],
    ['a number', { max_tokens: 1024 }],
    ['a boolean', { has_password: true }],
  ])('keeps %s under a secret-named key', (_name, input) => {
    expect(redactor.redactValue(input)).toEqual(input);
  });

  it('walks into arrays and objects under a secret-named key', () => {
    expect(redactor.redactValue({ tokens: ['plain', `x ${GHP}`], secrets: { db: 'plain' } })).toEqual({
      tokens: ['plain', 'x <redacted:github-token>'],
      secrets: { db: 'plain' },
    });
  });

  it('uses digest markers in digest mode', () => {
    const out = redactor.redactValue({ password: 'hunter2', note: 'token=hunter2' }, 'digest');
    expect(out.password).toBe(out.note.slice('token='.length));
    expect(out.password).toMatch(/^<redacted:sha256:[0-9a-f]{8} len:7>$/);
  });

  it('handles a null-prototype object and a "__proto__" key without touching prototypes', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { token: 'abc' });
    expect(redactor.redactValue(bare)).toEqual({ token: '<redacted:token>' });
    const parsed = JSON.parse('{"__proto__": {"password": "x"}}') as Record<string, unknown>;
    const out = redactor.redactValue(parsed);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"password":"<redacted:password>"}}');
  });

  it('returns primitives as they are', () => {
    expect(redactor.redactValue(7)).toBe(7);
    expect(redactor.redactValue(null)).toBeNull();
    expect(redactor.redactValue('password=x')).toBe('password=<redacted:password>');
  });
});

describe('stripTerminalControls', () => {
  it.each([
    ['SGR colours', '\x1b[1;31mERROR\x1b[0m done', 'ERROR done'],
    ['256-colour and truecolour SGR', '\x1b[38;5;196mred\x1b[48;2;0;0;0m\x1b[m', 'red'],
    ['cursor moves and screen clears', '\x1b[2J\x1b[H\x1b[10;20Hx\x1b[3A\x1b[K', 'x'],
    ['private modes (cursor hide, alternate screen)', '\x1b[?25l\x1b[?1049hvim\x1b[?1049l', 'vim'],
    ['an OSC 8 hyperlink, keeping its text', '\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\', 'click me'],
    ['an OSC 52 clipboard write (BEL-terminated)', 'ok\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07', 'ok'],
    ['a window title set (BEL)', '\x1b]0;root@web1: ~\x07$ ', '$ '],
    ['a window title set (ST)', '\x1b]2;title\x1b\\text', 'text'],
    ['a C1 CSI (U+009B)', '\u009b31mred\u009b0m', 'red'],
    ['a C1 OSC ended by a C1 ST', '\u009d0;title\u009cafter', 'after'],
    ['a DCS string', '\x1bPq#0;2;0;0;0#1\x1b\\after', 'after'],
    ['an APC string', '\x1b_Gf=100;AAAA\x1b\\after', 'after'],
    ['charset, keypad, save-cursor and reset sequences', '\x1b(B\x1b=\x1b7\x1bca\x1b8', 'a'],
    ['an unterminated OSC, up to the end of the line', '\x1b]0;title\nnext line', '\nnext line'],
    ['a CSI cut off at the end', 'abc\x1b[3', 'abc'],
    ['a lone ESC at the end', 'abc\x1b', 'abc'],
    ['lone C0 controls, DEL and C1 controls', 'a\x00b\x07c\x08d\x0be\x0cf\x1ag\x7fh\u0085i\u0084j', 'abcdefghij'],
    ['nothing from tabs, newlines, carriage returns or non-ASCII text', 'a\tb\r\nc é 😀 ü\n', 'a\tb\r\nc é 😀 ü\n'],
  ])('strips %s', (_name, input, expected) => {
    expect(stripTerminalControls(input)).toBe(expected);
  });

  it('returns the same string when there is nothing to strip', () => {
    const text = 'plain text\n';
    expect(stripTerminalControls(text)).toBe(text);
  });
});

describe('Redactor: linear time on adversarial input', () => {
  const MiB = 1 << 20;
  const fill = (unit: string): string => unit.repeat(Math.ceil(MiB / unit.length)).slice(0, MiB);
  const redactor = new Redactor({ secrets: ['aaaa'] });

  it.each([
    ['one long run of letters', 'b'.repeat(MiB)],
    ['repeated BEGIN lines', fill('-----BEGIN ')],
    ['repeated private key headers with no END', fill(`-----BEGIN RSA ${PK}-----`)],
    ['a BEGIN followed by a long label', `-----BEGIN ${'A'.repeat(MiB)}`],
    ['repeated password=', fill('password=')],
    ['repeated password="', fill('password="')],
    ['an unclosed quoted value full of backslashes', `password="${'\\'.repeat(MiB)}`],
    ['repeated YAML keys with no value', fill('\npassword: ')],
    ['long keys that end in a keyword', fill(`${'x'.repeat(39)}password`)],
    ['repeated scheme separators', fill('a://b:')],
    ['a scheme followed by colons', `a://${':'.repeat(MiB)}`],
    ['repeated eyJ segments', fill('eyJaaaaaaaa.')],
    ['repeated Bearer', fill('Bearer ')],
    ['repeated Authorization:', fill('Authorization: ')],
    ['repeated CSI openers', fill('\x1b[')],
    ['repeated OSC openers', fill('\x1b]')],
    ['a PuTTY private section with one huge line', `Private-Lines: 1\n${'A'.repeat(MiB)}`],
    ['many matches of a configured secret', 'a'.repeat(MiB)],
  ])('handles 1 MiB of %s', (_name, text) => {
    const result = redactor.redact(text, 'digest');
    expect(result.count).toBeGreaterThanOrEqual(0);
    expect(typeof result.text).toBe('string');
  });
});
