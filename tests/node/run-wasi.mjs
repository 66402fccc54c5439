// Runs a WASI preview 1 command in Node.js (node:wasi), with one preopened directory:
//   node run-wasi.mjs MODULE.wasm HOST_DIR GUEST_DIR [ARGS...]
// Exit code: the guest's, or 134 when it traps (the message goes to stderr).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv } from 'node:process';

const [, , wasmPath, hostDir, guestDir, ...args] = argv;
const wasi = new WASI({
  version: 'preview1',
  args: ['guest', ...args],
  preopens: { [guestDir]: hostDir },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
try {
  process.exitCode = wasi.start(instance);
} catch (e) {
  console.error(`trap: ${e.message}`);
  process.exitCode = 134;
}
