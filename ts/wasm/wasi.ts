// The WASI functions Rust's std needs on wasm32-wasip1: the clock (boringtun
// stamps handshakes with wall time), randomness (keys, TCP sequence numbers), stderr
// (panic messages), an empty environment, a no-op yield, and exit. Plain web-standard code, so it
// runs the same in Node, Deno and Bun without `node:wasi`.

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const CLOCK_REALTIME = 0;
const RANDOM_CHUNK = 65536; // getRandomValues' per-call limit

/** What the engine printed to stderr before it trapped; kept for the error message. */
export interface WasiOutput {
  stderr: string;
}

export function wasiImports(memory: () => WebAssembly.Memory, output: WasiOutput) {
  const view = () => new DataView(memory().buffer);
  return {
    clock_time_get(id: number, _precision: bigint, timePtr: number): number {
      const ms = id === CLOCK_REALTIME ? Date.now() : performance.now();
      view().setBigUint64(timePtr, BigInt(Math.round(ms * 1e6)), true);
      return ERRNO_SUCCESS;
    },
    random_get(ptr: number, len: number): number {
      for (let offset = 0; offset < len; offset += RANDOM_CHUNK) {
        crypto.getRandomValues(new Uint8Array(memory().buffer, ptr + offset, Math.min(RANDOM_CHUNK, len - offset)));
      }
      return ERRNO_SUCCESS;
    },
    fd_write(fd: number, iovs: number, iovsLen: number, writtenPtr: number): number {
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      const v = view();
      let written = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = v.getUint32(iovs + i * 8, true);
        const len = v.getUint32(iovs + i * 8 + 4, true);
        output.stderr += new TextDecoder().decode(new Uint8Array(memory().buffer, ptr, len));
        written += len;
      }
      output.stderr = output.stderr.slice(-4096);
      v.setUint32(writtenPtr, written, true);
      return ERRNO_SUCCESS;
    },
    environ_sizes_get(countPtr: number, sizePtr: number): number {
      view().setUint32(countPtr, 0, true);
      view().setUint32(sizePtr, 0, true);
      return ERRNO_SUCCESS;
    },
    environ_get(): number {
      return ERRNO_SUCCESS;
    },
    // parking_lot's spin loop may yield; there is only one thread, so this returns at once.
    sched_yield(): number {
      return ERRNO_SUCCESS;
    },
    proc_exit(code: number): never {
      throw new WebAssembly.RuntimeError(`wasm engine exited with code ${code}`);
    },
  };
}
