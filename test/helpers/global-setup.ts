// Fails the whole run, with the install command, when OpenSSH's sshd is missing: integration tests never skip.
import { existsSync } from 'node:fs';

export default function setup(): void {
  const sshd = process.env['SSHGATE_SSHD'] ?? '/usr/sbin/sshd';
  if (!existsSync(sshd)) {
    throw new Error(
      `OpenSSH sshd not found at ${sshd}. The integration tests run real sshd processes on loopback.\n` +
        'Install it with:  sudo apt-get update && sudo apt-get install -y openssh-server   (Debian/Ubuntu)\n' +
        'or point SSHGATE_SSHD at an sshd binary.',
    );
  }
}
