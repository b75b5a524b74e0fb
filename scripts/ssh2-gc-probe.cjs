// Loads ssh2's native crypto binding (path in argv[2]) and makes the GC collect 20000 of its cipher objects; prints
// "survived" when the process lived through it. Run with --expose-gc. Used by scripts/build-ssh2-binding.mjs and
// its test: on Node 24.19+ an addon built with the stock node_object_wrap.h aborts here (nodejs/node#65446).
'use strict';
const binding = require(process.argv[2]);
for (let round = 0; round < 10; round++) {
  for (let i = 0; i < 1000; i++) {
    new binding.AESGCMCipher('aes-256-gcm', Buffer.alloc(32, 1), Buffer.alloc(12, 2));
    new binding.AESGCMDecipher('aes-256-gcm', Buffer.alloc(32, 1), Buffer.alloc(12, 2));
  }
  globalThis.gc();
}
process.stdout.write('survived');
